#include "greenlight/common/scheduler.h"

#include <algorithm>
#include <vector>

namespace greenlight {

SimulatedTimeSource::SimulatedTimeSource()
    : wall_base_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::sys_days(std::chrono::year(2026) / 1 / 1).time_since_epoch())
                        .count()) {}

MonoTime SimulatedTimeSource::monotonicNow() const {
  return MonoTime(std::chrono::nanoseconds(mono_ns_.load()));
}

WallTime SimulatedTimeSource::wallNow() const {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(
      std::chrono::nanoseconds(wall_base_ns_ + mono_ns_.load())));
}

void SimulatedTimeSource::advance(Duration d) { mono_ns_ += d.count(); }

void SimulatedTimeSource::setMonotonic(MonoTime t) {
  int64_t target = t.time_since_epoch().count();
  if (target > mono_ns_.load()) mono_ns_ = target;
}

TimerId TimerQueue::scheduleAt(MonoTime when, std::function<void()> fn) {
  TimerId id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_id_++;
    timers_.emplace(std::make_pair(when, id), std::move(fn));
    deadline_of_[id] = when;
  }
  if (wake_) wake_();
  return id;
}

void TimerQueue::cancel(TimerId id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = deadline_of_.find(id);
  if (it == deadline_of_.end()) return;
  timers_.erase({it->second, id});
  deadline_of_.erase(it);
}

int TimerQueue::runDue() {
  int ran = 0;
  for (;;) {
    std::function<void()> fn;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (timers_.empty()) break;
      auto it = timers_.begin();
      if (it->first.first > time_.monotonicNow()) break;
      fn = std::move(it->second);
      deadline_of_.erase(it->first.second);
      timers_.erase(it);
    }
    fn();
    ++ran;
  }
  return ran;
}

std::optional<MonoTime> TimerQueue::nextDeadline() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (timers_.empty()) return std::nullopt;
  return timers_.begin()->first.first;
}

Duration TimerQueue::waitFor(MonoTime now, Duration at_most) const {
  const std::optional<MonoTime> next = nextDeadline();
  if (!next) return at_most;
  if (*next <= now) return Duration(0);
  return std::min(at_most, *next - now);
}

size_t TimerQueue::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return timers_.size();
}

void SimulatedScheduler::advance(Duration d) {
  const MonoTime target = clock_.monotonicNow() + d;
  queue_.runDue();
  for (;;) {
    auto next = queue_.nextDeadline();
    if (!next || *next > target) break;
    clock_.setMonotonic(*next);
    queue_.runDue();
  }
  clock_.setMonotonic(target);
  queue_.runDue();
}

}  // namespace greenlight
