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

class ProbeMetrics {
 public:
  ProbeMetrics();
  ~ProbeMetrics();
  void setProbe(const ProbeSpec& spec);  // add or relabel
  void removeProbe(const std::string& name);
  void record(const ProbeResult& result, const HealthState& health, WallTime now);
  void countSkipped(const std::string& name);
  void observeLateness(Duration lateness);
  // Appends every probe metric in the text exposition format.
  void appendExposition(std::string& out) const;
  std::string exposition() const {
    std::string out;
    appendExposition(out);
    return out;
  }

 private:
  struct Series;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Series>> probes_;
  FixedHistogram lateness_;
};

}  // namespace greenlight::probes
