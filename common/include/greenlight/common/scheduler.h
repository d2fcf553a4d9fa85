// Timers on an injected clock. Scheduler is the interface code depends on; TimerQueue is its one
// implementation, run by an event loop (real time) or by SimulatedScheduler (tests).
// TimerQueue is thread-safe: schedule/cancel may be called from any thread; runDue runs the
// callbacks on the calling thread, without holding the lock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>

#include "greenlight/common/time_source.h"

namespace greenlight {

using TimerId = uint64_t;

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual TimerId scheduleAt(MonoTime when, std::function<void()> fn) = 0;
  virtual void cancel(TimerId id) = 0;
  virtual const TimeSource& time() const = 0;

  TimerId scheduleAfter(Duration delay, std::function<void()> fn) {
    return scheduleAt(time().monotonicNow() + delay, std::move(fn));
  }
};

class TimerQueue final : public Scheduler {
 public:
  explicit TimerQueue(const TimeSource& time) : time_(time) {}

  TimerId scheduleAt(MonoTime when, std::function<void()> fn) override;
  void cancel(TimerId id) override;
  const TimeSource& time() const override { return time_; }

  // Runs every timer due at the current time (including ones that a callback schedules for
  // now or earlier). Returns how many ran.
  int runDue();
  std::optional<MonoTime> nextDeadline() const;
  // How long a loop may wait for the next timer: until it is due, at most `at_most`, zero when
  // one is due already (also one posted at MonoTime::min(), where due - now would overflow).
  Duration waitFor(MonoTime now, Duration at_most) const;
  size_t size() const;
  // Called (outside the lock) after a schedule from any thread, so a sleeping loop wakes up.
  void setWakeup(std::function<void()> wake) { wake_ = std::move(wake); }

 private:
  const TimeSource& time_;
  mutable std::mutex mu_;
  // Ordered by (deadline, id): equal deadlines run in the order they were scheduled.
  std::map<std::pair<MonoTime, TimerId>, std::function<void()>> timers_;
  std::map<TimerId, MonoTime> deadline_of_;
  TimerId next_id_ = 1;
  std::function<void()> wake_;
};

// For tests: a simulated clock and a timer queue that advance together.
class SimulatedScheduler {
 public:
  SimulatedScheduler() : queue_(clock_) {}
  SimulatedTimeSource& clock() { return clock_; }
  Scheduler& scheduler() { return queue_; }
  TimerQueue& queue() { return queue_; }
  // Moves time forward by d, stopping at each timer deadline on the way to run it.
  void advance(Duration d);
  void runDue() { queue_.runDue(); }

 private:
  SimulatedTimeSource clock_;
  TimerQueue queue_;
};

}  // namespace greenlight
