// The outbox's order and hand-over rules, without a network: which entry goes next, what a
// restart reads back, and that a new entry waits for release().
#include "greenlight/alerts/outbox.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace greenlight::alerts {
namespace {

using namespace std::chrono_literals;

OutboxEntry entry(uint64_t seq, const std::string& group, WallTime next, bool held = false) {
  OutboxEntry e;
  e.seq = seq;
  e.id = "n" + std::to_string(seq);
  e.receiver = "oncall";
  e.group_key = group;
  e.next_attempt = next;
  e.held = held;
  return e;
}

auto anyReceiver() {
  return [](const std::string& r) { return r == "oncall"; };
}

TEST(OutboxTest, AGroupsNotificationsLeaveInTheOrderTheyWereMade) {
  const WallTime now = SimulatedTimeSource().wallNow();
  std::map<uint64_t, OutboxEntry> entries;
  entries[1] = entry(1, "g", now + 30s);  // "firing", being retried
  entries[2] = entry(2, "g", now);        // "resolved", due now but must not overtake it
  entries[3] = entry(3, "h", now + 1s);
  WallTime next = WallTime::max();
  EXPECT_EQ(Deliverer::pickDue(entries, anyReceiver(), now, next), nullptr);
  EXPECT_EQ(next, now + 1s);  // h's entry; g's second waits behind its first
  next = WallTime::max();
  const OutboxEntry* due = Deliverer::pickDue(entries, anyReceiver(), now + 1s, next);
  ASSERT_NE(due, nullptr);
  EXPECT_EQ(due->seq, 3u);
  entries.erase(3);
  next = WallTime::max();
  due = Deliverer::pickDue(entries, anyReceiver(), now + 30s, next);
  ASSERT_NE(due, nullptr);
  EXPECT_EQ(due->seq, 1u);
  entries.erase(1);
  due = Deliverer::pickDue(entries, anyReceiver(), now + 30s, next);
  ASSERT_NE(due, nullptr);
  EXPECT_EQ(due->seq, 2u);
}

TEST(OutboxTest, HeldEntriesAndEntriesWithoutAReceiverWait) {
  const WallTime now = SimulatedTimeSource().wallNow();
  std::map<uint64_t, OutboxEntry> entries;
  entries[1] = entry(1, "g", now, /*held=*/true);
  entries[2] = entry(2, "h", now);
  entries[2].receiver = "removed-from-config";
  WallTime next = WallTime::max();
  EXPECT_EQ(Deliverer::pickDue(entries, anyReceiver(), now, next), nullptr);
  EXPECT_EQ(next, WallTime::max());
  entries[1].held = false;
  const OutboxEntry* due = Deliverer::pickDue(entries, anyReceiver(), now, next);
  ASSERT_NE(due, nullptr);
  EXPECT_EQ(due->seq, 1u);
}

class RecordingClient final : public HttpClient {
 public:
  explicit RecordingClient(std::atomic<int>& calls) : calls_(calls) {}
  HttpReply send(const HttpRequestSpec&) override {
    ++calls_;
    return HttpReply{200, "", "", {}};
  }

 private:
  std::atomic<int>& calls_;
};

Notification notification(const std::string& group, bool firing) {
  Notification n;
  n.receiver = "oncall";
  n.group_key = group;
  n.firing = firing;
  n.alerts.push_back({{{"alertname", "A"}}, {}, firing, WallTime{} + 1h, firing ? WallTime{} : WallTime{} + 2h, "fp1"});
  return n;
}

TEST(OutboxTest, ARestartReadsBackEachEntrysGroupStateAndOrder) {
  testing::TempDir dir;
  SimulatedTimeSource time;
  DefaultRandom random(1);
  prometheus::Registry registry;
  std::atomic<int> calls{0};
  ReceiverSpec spec;
  spec.name = "oncall";
  spec.url = "http://127.0.0.1:1/hook";
  const std::string file = dir.path() + "/outbox.json";
  {
    Deliverer d(time, random, std::make_unique<RecordingClient>(calls), file, RetryPolicy{}, registry);
    d.setReceivers({{"oncall", makeNotifier(spec)}});
    EncodeContext ctx{"", time.wallNow()};
    ASSERT_EQ(d.enqueue(notification("g", true), ctx), 1u);
    ASSERT_EQ(d.enqueue(notification("g", false), ctx), 1u);
    EXPECT_TRUE(d.entries()[0].held);  // nothing leaves before release(); never started here
  }
  prometheus::Registry registry2;
  Deliverer d(time, random, std::make_unique<RecordingClient>(calls), file, RetryPolicy{}, registry2);
  d.setReceivers({{"oncall", makeNotifier(spec)}});
  ASSERT_TRUE(d.load().ok());
  const auto e = d.entries();
  ASSERT_EQ(e.size(), 2u);
  EXPECT_LT(e[0].seq, e[1].seq);
  EXPECT_EQ(e[0].group_key, "g");
  EXPECT_EQ(e[0].sent, (std::map<std::string, bool>{{"fp1", true}}));
  EXPECT_EQ(e[1].sent, (std::map<std::string, bool>{{"fp1", false}}));
  EXPECT_FALSE(e[0].held);  // left by a previous run: sent as soon as the sender starts
  // New entries number on from the loaded ones, and go out once released.
  ASSERT_EQ(d.enqueue(notification("h", true), EncodeContext{"", time.wallNow()}), 1u);
  EXPECT_GT(d.entries().back().seq, e[1].seq);
  d.start();
  d.release();
  ASSERT_TRUE(testing::waitUntil([&] { return d.depth() == 0; }));
  EXPECT_EQ(calls.load(), 3);
}

}  // namespace
}  // namespace greenlight::alerts
