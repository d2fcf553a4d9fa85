// Prometheus metrics of every probe, built on scrape from a compact per-probe record rather than
// one prometheus-cpp object per series: 10,000 probes stay small, and a removed probe's series
// disappear at once (no frozen values). blackbox_exporter names where the meaning is the same,
// greenlight_* for what it lacks. Thread-safe: updated on the loop thread, collected on scrape.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "greenlight/probes/health.h"
#include "greenlight/probes/probe_result.h"
#include "greenlight/probes/probe_spec.h"

namespace greenlight::probes {

// Cumulative histogram with fixed bounds.
struct Histogram {
  explicit Histogram(std::vector<double> bounds)
      : bounds(std::move(bounds)), counts(this->bounds.size() + 1, 0) {}
  void observe(double v);
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // per bucket, not cumulative; last = +Inf
  uint64_t count = 0;
  double sum = 0;
};

class ProbeMetrics final : public prometheus::Collectable {
 public:
  ProbeMetrics();
  ~ProbeMetrics() override;
  void setProbe(const ProbeSpec& spec);  // add or relabel
  void removeProbe(const std::string& name);
  void record(const ProbeResult& result, const HealthState& health, WallTime now);
  void countSkipped(const std::string& name);
  void observeLateness(Duration lateness);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Series;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Series>> probes_;
  Histogram lateness_;
};

}  // namespace greenlight::probes
