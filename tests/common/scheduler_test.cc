#include "greenlight/common/scheduler.h"

#include <gtest/gtest.h>

#include <vector>

namespace greenlight {
namespace {

using namespace std::chrono_literals;

TEST(SimulatedScheduler, RunsTimersInDeadlineOrderAtTheirTime) {
  SimulatedScheduler sim;
  std::vector<std::pair<int, int64_t>> ran;  // (timer, ms at which it ran)
  auto at = [&](int id) {
    return [&, id] { ran.push_back({id, toMillis(sim.clock().monotonicNow().time_since_epoch())}); };
  };
  sim.scheduler().scheduleAfter(300ms, at(3));
  sim.scheduler().scheduleAfter(100ms, at(1));
  sim.scheduler().scheduleAfter(200ms, at(2));
  sim.advance(250ms);
  ASSERT_EQ(ran.size(), 2u);
  EXPECT_EQ(ran[0], std::make_pair(1, int64_t{100}));
  EXPECT_EQ(ran[1], std::make_pair(2, int64_t{200}));
  sim.advance(50ms);
  ASSERT_EQ(ran.size(), 3u);
  EXPECT_EQ(ran[2], std::make_pair(3, int64_t{300}));
}

TEST(SimulatedScheduler, CancelledTimerNeverRuns) {
  SimulatedScheduler sim;
  bool ran = false;
  TimerId id = sim.scheduler().scheduleAfter(10ms, [&] { ran = true; });
  sim.scheduler().cancel(id);
  sim.advance(1s);
  EXPECT_FALSE(ran);
  EXPECT_EQ(sim.queue().size(), 0u);
}

TEST(SimulatedScheduler, TimersScheduledByCallbacksRunWithinTheSameAdvance) {
  SimulatedScheduler sim;
  int count = 0;
  std::function<void()> again = [&] {
    ++count;
    sim.scheduler().scheduleAfter(100ms, again);
  };
  sim.scheduler().scheduleAfter(100ms, again);
  sim.advance(1s);
  EXPECT_EQ(count, 10);
}

TEST(SimulatedScheduler, EqualDeadlinesRunInScheduleOrder) {
  SimulatedScheduler sim;
  std::string order;
  for (char c : std::string("abc")) sim.scheduler().scheduleAfter(5ms, [&order, c] { order += c; });
  sim.advance(5ms);
  EXPECT_EQ(order, "abc");
}

TEST(TimerQueue, NextDeadlineIsTheEarliest) {
  SimulatedTimeSource clock;
  TimerQueue q(clock);
  EXPECT_FALSE(q.nextDeadline().has_value());
  q.scheduleAfter(2s, [] {});
  q.scheduleAfter(1s, [] {});
  EXPECT_EQ(*q.nextDeadline(), clock.monotonicNow() + 1s);
  EXPECT_EQ(q.runDue(), 0);
}

TEST(TimerQueue, WakeupHookIsCalledOnSchedule) {
  SimulatedTimeSource clock;
  TimerQueue q(clock);
  int wakes = 0;
  q.setWakeup([&] { ++wakes; });
  q.scheduleAfter(1s, [] {});
  EXPECT_EQ(wakes, 1);
}

TEST(TimerQueue, WaitForIsTheTimeUntilTheNextTimerCappedAndNeverNegative) {
  SimulatedTimeSource clock;
  clock.advance(10s);
  const MonoTime now = clock.monotonicNow();
  TimerQueue q(clock);
  EXPECT_EQ(q.waitFor(now, 1s), Duration(1s)) << "no timer: the cap";
  TimerId later = q.scheduleAt(now + 300ms, [] {});
  EXPECT_EQ(q.waitFor(now, 1s), Duration(300ms));
  EXPECT_EQ(q.waitFor(now, 100ms), Duration(100ms)) << "further away than the cap";
  TimerId past = q.scheduleAt(now - 2s, [] {});
  EXPECT_EQ(q.waitFor(now, 1s), Duration(0)) << "overdue: run now";
  q.cancel(past);
  q.cancel(later);
  // Work posted to run at once is scheduled at MonoTime::min(); min() - now would overflow.
  q.scheduleAt(MonoTime::min(), [] {});
  EXPECT_EQ(q.waitFor(now, 1s), Duration(0));
  EXPECT_EQ(q.waitFor(MonoTime::max(), 1s), Duration(0));
}

TEST(SimulatedScheduler, WorkPostedForAtOnceRunsWithoutMovingTimeBack) {
  SimulatedScheduler sim;
  sim.advance(5s);
  const MonoTime before = sim.clock().monotonicNow();
  MonoTime seen{};
  sim.scheduler().scheduleAt(MonoTime::min(), [&] { seen = sim.clock().monotonicNow(); });
  sim.advance(0s);
  EXPECT_EQ(seen, before);
  EXPECT_EQ(sim.clock().monotonicNow(), before);
}

TEST(SimulatedTimeSource, WallTimeMovesWithMonotonic) {
  SimulatedTimeSource clock;
  auto w0 = clock.wallNow();
  clock.advance(90s);
  EXPECT_EQ(clock.wallNow() - w0, 90s);
}

}  // namespace
}  // namespace greenlight
