// Prometheus metrics of every probe, written as exposition text on scrape from a compact
// per-probe record rather than one metric object per series: 10,000 probes stay small, and a
// removed probe's series disappear at once (no frozen values). blackbox_exporter names where
// the meaning is the same, greenlight_* for what it lacks (docs/metrics.md).
// Thread-safe: updated on the loop thread, written on scrape.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "greenlight/common/exposition.h"
#include "greenlight/probes/health.h"
#include "greenlight/probes/probe_result.h"
#include "greenlight/probes/probe_spec.h"

namespace greenlight::probes {

class ProbeMetrics final : public ExpositionSource {
 public:
  ProbeMetrics();
  ~ProbeMetrics() override;
  void setProbe(const ProbeSpec& spec);  // add or relabel
  void removeProbe(const std::string& name);
  void record(const ProbeResult& result, const HealthState& health, WallTime now);
  void countSkipped(const std::string& name);
  void observeLateness(Duration lateness);
  // Written in pieces: family by family, probe by probe, the lock taken per piece. A probe
  // added during a scrape shows from the next one; a removed one is skipped.
  std::unique_ptr<Cursor> begin() const override;
  bool next(Cursor& cursor, std::string& out, size_t budget) const override;
  std::string exposition() const { return all(); }

  struct Series;  // private to the .cc; named here for its family table

 private:
  struct ScrapeCursor;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Series>> probes_;
  FixedHistogram lateness_;
};

}  // namespace greenlight::probes
