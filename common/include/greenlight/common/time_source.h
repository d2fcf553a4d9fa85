// Time is injected: code asks a TimeSource for monotonic and wall time. RealTimeSource reads the
// system clocks; SimulatedTimeSource is moved by tests. Both are thread-safe.
#pragma once

#include <atomic>
#include <chrono>

namespace greenlight {

using Duration = std::chrono::nanoseconds;
using MonoTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

class TimeSource {
 public:
  virtual ~TimeSource() = default;
  virtual MonoTime monotonicNow() const = 0;
  virtual WallTime wallNow() const = 0;
};

class RealTimeSource final : public TimeSource {
 public:
  MonoTime monotonicNow() const override;
  WallTime wallNow() const override;
};

// Starts at a fixed wall time (2026-01-01T00:00:00Z) and monotonic zero, and moves only
// when told.
class SimulatedTimeSource final : public TimeSource {
 public:
  SimulatedTimeSource();
  MonoTime monotonicNow() const override;
  WallTime wallNow() const override;
  void advance(Duration d);
  void setMonotonic(MonoTime t);  // never moves backwards

 private:
  std::atomic<int64_t> mono_ns_{0};
  int64_t wall_base_ns_;
};

inline double toSeconds(Duration d) { return std::chrono::duration<double>(d).count(); }
inline int64_t toMillis(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace greenlight
