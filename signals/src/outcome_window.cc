#include "greenlight/signals/outcome_window.h"

#include <algorithm>
#include <cmath>

namespace greenlight::signals {

const std::vector<double>& OutcomeWindow::latencyBounds() {
  static const std::vector<double> bounds = [] {
    std::vector<double> b;
    for (double v = 0.001; v < 120.0; v *= 1.25) b.push_back(v);  // 1 ms .. ~2 min, 25% steps
    return b;
  }();
  return bounds;
}

OutcomeWindow::OutcomeWindow(Duration span, int buckets, bool track_latency)
    : span_(span), width_(std::max<Duration>(Duration(1), span / std::max(1, buckets))) {
  buckets_.resize(std::max(1, buckets) + 1);  // +1: the current, partly filled bucket
  if (track_latency) latency_.assign(buckets_.size() * (latencyBounds().size() + 1), 0);
}

void OutcomeWindow::observe(MonoTime at, bool ok, double latency_seconds) {
  const int64_t idx = indexOf(at);
  const size_t slot = static_cast<size_t>(idx % static_cast<int64_t>(buckets_.size()));
  Bucket& b = buckets_[slot];
  const size_t bins = latencyBounds().size() + 1;
  if (b.index != idx) {
    if (b.index > idx) return;  // older than anything kept
    b = Bucket{idx, 0, 0};
    if (!latency_.empty()) std::fill_n(latency_.begin() + slot * bins, bins, 0);
  }
  ++b.total;
  if (!ok) ++b.failures;
  if (!latency_.empty()) {
    const auto& bounds = latencyBounds();
    const size_t bin = std::lower_bound(bounds.begin(), bounds.end(), latency_seconds) - bounds.begin();
    ++latency_[slot * bins + bin];
  }
  last_ = std::max(last_, at);
}

template <class Fn>
void OutcomeWindow::forEachInWindow(MonoTime now, Duration window, Fn fn) const {
  const int64_t newest = indexOf(now);
  const int64_t n = std::clamp<int64_t>(window / width_, 1, static_cast<int64_t>(buckets_.size()) - 1);
  // The current bucket plus the n-1 before it: at most one bucket width more than `window`.
  for (size_t slot = 0; slot < buckets_.size(); ++slot) {
    const Bucket& b = buckets_[slot];
    if (b.index < 0 || b.index > newest || b.index <= newest - n) continue;
    fn(slot);
  }
}

WindowStats OutcomeWindow::stats(MonoTime now, Duration window) const {
  WindowStats s;
  forEachInWindow(now, window, [&](size_t slot) {
    s.total += buckets_[slot].total;
    s.failures += buckets_[slot].failures;
  });
  return s;
}

double bucketQuantile(const std::vector<double>& bounds, const std::vector<uint64_t>& counts, double q) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0 || bounds.empty()) return -1;
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    if (static_cast<double>(seen + counts[i]) >= rank) {
      const double lo = i == 0 ? 0.0 : bounds[std::min(i, bounds.size()) - 1];
      const double hi = i < bounds.size() ? bounds[i] : bounds.back();
      const double frac = (rank - static_cast<double>(seen)) / static_cast<double>(counts[i]);
      return lo + (hi - lo) * std::clamp(frac, 0.0, 1.0);
    }
    seen += counts[i];
  }
  return bounds.back();
}

double OutcomeWindow::latencyQuantile(MonoTime now, Duration window, double q) const {
  if (latency_.empty()) return -1;
  const size_t bins = latencyBounds().size() + 1;
  std::vector<uint64_t> sum(bins, 0);
  forEachInWindow(now, window, [&](size_t slot) {
    for (size_t i = 0; i < bins; ++i) sum[i] += latency_[slot * bins + i];
  });
  return bucketQuantile(latencyBounds(), sum, q);
}

}  // namespace greenlight::signals
