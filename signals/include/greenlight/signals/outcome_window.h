// A bounded window of recent outcomes (ok / failed, with a latency) in fixed time buckets: the
// failure ratio, request count and latency quantiles over the last `span`. Memory is fixed at
// construction (buckets x counters); nothing older than the span is kept, which is also the
// platform's promise of no historical records.
// Times come from the caller (no clock inside). Thread-compatible.
#pragma once

#include <cstdint>
#include <vector>

#include "greenlight/common/time_source.h"

namespace greenlight::signals {

struct WindowStats {
  uint64_t total = 0;
  uint64_t failures = 0;
  double failureRatio() const { return total == 0 ? 0.0 : static_cast<double>(failures) / total; }
};

// The q-quantile (0..1) of observations counted per histogram bin: counts[i] observations in
// (bounds[i-1], bounds[i]], the last bin (counts.size() == bounds.size() + 1) above the last
// bound. Interpolated linearly inside the bin, as Prometheus' histogram_quantile does; an
// observation above the last bound counts as the last bound. Negative when there is none.
double bucketQuantile(const std::vector<double>& bounds, const std::vector<uint64_t>& counts, double q);

class OutcomeWindow {
 public:
  // `buckets` slices of span/buckets each; with `track_latency` every bucket also holds a
  // latency histogram (log-spaced bounds from 1 ms to ~2 min) for quantiles.
  OutcomeWindow(Duration span, int buckets, bool track_latency);

  void observe(MonoTime at, bool ok, double latency_seconds);
  // Outcomes in the last `window` (<= span) before `now`, at bucket resolution.
  WindowStats stats(MonoTime now, Duration window) const;
  // The q-quantile (0..1) of latency in the window, interpolated inside a histogram bucket;
  // negative when there is no observation (or latency is not tracked).
  double latencyQuantile(MonoTime now, Duration window, double q) const;
  Duration span() const { return span_; }
  Duration resolution() const { return width_; }
  // The last observation's time (MonoTime::min() before the first).
  MonoTime lastObserved() const { return last_; }

  static const std::vector<double>& latencyBounds();

 private:
  struct Bucket {
    int64_t index = -1;  // absolute bucket number (time / width); -1: empty
    uint32_t total = 0;
    uint32_t failures = 0;
  };
  int64_t indexOf(MonoTime t) const { return t.time_since_epoch().count() / width_.count(); }
  // Calls fn(slot) for every bucket inside the window.
  template <class Fn>
  void forEachInWindow(MonoTime now, Duration window, Fn fn) const;

  Duration span_;
  Duration width_;
  std::vector<Bucket> buckets_;
  std::vector<uint32_t> latency_;  // buckets x (bounds + 1), empty without latency tracking
  MonoTime last_ = MonoTime::min();
};

}  // namespace greenlight::signals
