#include "greenlight/alerts/dispatcher.h"

#include <gtest/gtest.h>

namespace greenlight::alerts {
namespace {

using namespace std::chrono_literals;

Matcher m(const std::string& text) { return parseMatcher(text).value(); }

struct Harness {
  SimulatedScheduler sim;
  std::vector<Notification> sent;
  Dispatcher d{sim.scheduler(), [this](const Notification& n) { sent.push_back(n); }};

  Harness(Duration wait = 10s, Duration interval = 1min, Duration repeat = 1h) {
    DispatcherConfig c;
    c.root.receiver = "oncall";
    c.root.group_by = std::vector<std::string>{"alertname", "oem"};
    c.root.group_wait = wait;
    c.root.group_interval = interval;
    c.root.repeat_interval = repeat;
    d.setConfig(c);
  }
  void fire(const Labels& l) { d.update({l, {{"summary", "s"}}, true, sim.clock().wallNow(), {}, 1}); }
  void resolve(const Labels& l) { d.update({l, {{"summary", "s"}}, false, sim.clock().wallNow() - 1min, sim.clock().wallNow(), 0}); }
};

const Labels kBmw = {{"alertname", "ProbeFailing"}, {"oem", "bmw"}, {"probe", "bmw-odometer"}};
const Labels kBmw2 = {{"alertname", "ProbeFailing"}, {"oem", "bmw"}, {"probe", "bmw-certificate"}};
const Labels kFord = {{"alertname", "ProbeFailing"}, {"oem", "ford"}, {"probe", "ford-fuel"}};

TEST(DispatcherTest, GroupWaitCollectsAlertsOfAGroupIntoOneNotification) {
  Harness h;
  h.fire(kBmw);
  h.sim.advance(5s);
  h.fire(kBmw2);
  h.fire(kFord);
  h.sim.advance(4s);
  EXPECT_TRUE(h.sent.empty());
  h.sim.advance(1s);  // bmw group's wait is over
  ASSERT_EQ(h.sent.size(), 1u);
  EXPECT_EQ(h.sent[0].alerts.size(), 2u);
  EXPECT_EQ(h.sent[0].group_labels, (Labels{{"alertname", "ProbeFailing"}, {"oem", "bmw"}}));
  EXPECT_EQ(h.sent[0].common_labels, (Labels{{"alertname", "ProbeFailing"}, {"oem", "bmw"}}));
  EXPECT_EQ(h.sent[0].group_key, "{}:{alertname=\"ProbeFailing\", oem=\"bmw\"}");
  h.sim.advance(5s);
  ASSERT_EQ(h.sent.size(), 2u);
  EXPECT_EQ(h.sent[1].group_labels.at("oem"), "ford");
}

TEST(DispatcherTest, NoDuplicatesAndRepeatAfterRepeatInterval) {
  Harness h(0s, 1min, 1h);
  h.fire(kBmw);
  h.sim.runDue();
  ASSERT_EQ(h.sent.size(), 1u);
  h.fire(kBmw);  // the same alert again: nothing new to say
  h.sim.advance(59min);
  EXPECT_EQ(h.sent.size(), 1u);
  h.sim.advance(1min);
  ASSERT_EQ(h.sent.size(), 2u);  // repeat_interval reached
  EXPECT_TRUE(h.sent[1].firing);
}

TEST(DispatcherTest, NewAlertInAFlushedGroupWaitsForGroupInterval) {
  Harness h(0s, 1min, 1h);
  h.fire(kBmw);
  h.sim.runDue();
  h.sim.advance(10s);
  h.fire(kBmw2);
  h.sim.advance(49s);
  EXPECT_EQ(h.sent.size(), 1u);
  h.sim.advance(1s);
  ASSERT_EQ(h.sent.size(), 2u);
  EXPECT_EQ(h.sent[1].alerts.size(), 2u);
}

TEST(DispatcherTest, ResolvedAtNextGroupIntervalByDefault) {
  Harness h(0s, 5min, 4h);
  h.fire(kBmw);
  h.sim.runDue();
  h.sim.advance(1min);
  h.resolve(kBmw);
  h.sim.advance(3min + 59s);
  EXPECT_EQ(h.sent.size(), 1u);
  h.sim.advance(1s);
  ASSERT_EQ(h.sent.size(), 2u);
  EXPECT_FALSE(h.sent[1].firing);
  EXPECT_FALSE(h.sent[1].alerts[0].firing);
  EXPECT_EQ(h.d.groupCount(), 0u);  // all resolved and said: the group is gone
}

TEST(DispatcherTest, ResolveImmediatelySendsResolvedAtOnce) {
  Harness h(0s, 5min, 4h);
  DispatcherConfig c;
  c.root.receiver = "oncall";
  c.root.group_wait = 0s;
  c.root.group_interval = 5min;
  c.root.resolve_immediately = true;
  h.d.setConfig(c);
  h.fire(kBmw);
  h.fire(kBmw2);
  h.sim.runDue();
  h.sim.advance(1min);
  h.resolve(kBmw);
  h.sim.runDue();
  EXPECT_EQ(h.sent.size(), 1u);  // bmw2 still firing: wait for the interval
  h.resolve(kBmw2);
  h.sim.runDue();
  ASSERT_EQ(h.sent.size(), 2u);
  EXPECT_FALSE(h.sent[1].firing);
  EXPECT_EQ(h.sent[1].alerts.size(), 2u);
}

TEST(DispatcherTest, ShortAlertInsideGroupWaitIsReported) {
  Harness h(30s, 5min, 4h);
  h.fire(kBmw);
  h.sim.advance(5s);
  h.resolve(kBmw);
  h.sim.advance(25s);
  ASSERT_EQ(h.sent.size(), 1u);
  EXPECT_FALSE(h.sent[0].firing);
  EXPECT_EQ(h.sent[0].alerts.at(0).labels, kBmw);
}

TEST(DispatcherTest, ShortAlertDroppedWhenConfiguredLikeAlertmanager) {
  Harness h(30s, 5min, 4h);
  DispatcherConfig c;
  c.root.receiver = "oncall";
  c.root.group_wait = 30s;
  c.report_short_alerts = false;
  h.d.setConfig(c);
  h.fire(kBmw);
  h.sim.advance(5s);
  h.resolve(kBmw);
  h.sim.advance(1min);
  EXPECT_TRUE(h.sent.empty());
}

TEST(DispatcherTest, RoutesWithMatchersAndContinue) {
  Harness h(0s);
  DispatcherConfig c;
  c.root.receiver = "default";
  c.root.group_wait = 0s;
  RouteSpec pager;
  pager.receiver = "pager";
  pager.matchers = {m("severity=page")};
  pager.continue_matching = true;
  RouteSpec slack;
  slack.receiver = "slack";
  slack.matchers = {m("oem=~bmw|ford")};
  RouteSpec never;
  never.receiver = "never";
  never.matchers = {m("oem=bmw")};  // after a match without continue: not reached
  c.root.routes = {pager, slack, never};
  h.d.setConfig(c);
  Labels page = kBmw;
  page["severity"] = "page";
  h.fire(page);
  h.fire({{"alertname", "Other"}, {"oem", "tesla"}});
  h.sim.runDue();
  std::multiset<std::string> receivers;
  for (const auto& n : h.sent) receivers.insert(n.receiver);
  EXPECT_EQ(receivers, (std::multiset<std::string>{"default", "pager", "slack"}));
}

TEST(DispatcherTest, SilencedAlertsAreNotSentAndExpiringTheSilenceSendsThem) {
  Harness h(0s, 1min, 4h);
  Silence s;
  s.matchers = {m("oem=bmw")};
  s.starts_at = h.sim.clock().wallNow();
  s.ends_at = s.starts_at + 2h;
  s.created_by = "alice";
  const std::string id = h.d.addSilence(s);
  h.fire(kBmw);
  h.fire(kFord);
  h.sim.runDue();
  ASSERT_EQ(h.sent.size(), 1u);
  EXPECT_EQ(h.sent[0].group_labels.at("oem"), "ford");
  EXPECT_EQ(h.d.muted(kBmw).silenced_by, std::vector<std::string>{id});
  h.sim.advance(10min);
  EXPECT_EQ(h.sent.size(), 1u);
  ASSERT_TRUE(h.d.expireSilence(id, h.sim.clock().wallNow()));
  h.sim.advance(1min);
  ASSERT_EQ(h.sent.size(), 2u);
  EXPECT_EQ(h.sent[1].group_labels.at("oem"), "bmw");
  EXPECT_FALSE(h.d.expireSilence(id, h.sim.clock().wallNow()));  // already expired
}

TEST(DispatcherTest, InhibitionMutesTargetsWhileTheSourceFires) {
  Harness h(0s, 1min, 4h);
  DispatcherConfig c;
  c.root.receiver = "oncall";
  c.root.group_wait = 0s;
  c.root.group_interval = 1min;
  c.root.group_by = std::vector<std::string>{"alertname", "oem"};
  c.inhibit_rules = {{{m("alertname=OemDown")}, {m("alertname=ProbeFailing")}, {"oem"}}};
  h.d.setConfig(c);
  h.fire({{"alertname", "OemDown"}, {"oem", "bmw"}});
  h.fire(kBmw);   // inhibited: same oem
  h.fire(kFord);  // not inhibited: different oem
  h.sim.runDue();
  std::set<std::string> sent;
  for (const auto& n : h.sent) sent.insert(n.group_labels.at("alertname") + "/" + n.group_labels.at("oem"));
  EXPECT_EQ(sent, (std::set<std::string>{"OemDown/bmw", "ProbeFailing/ford"}));
  EXPECT_TRUE(h.d.muted(kBmw).inhibited);
}

TEST(DispatcherTest, RestoredGroupsDoNotNotifyAgain) {
  std::vector<GroupRecord> saved;
  {
    Harness h(0s, 1min, 4h);
    h.fire(kBmw);
    h.sim.runDue();
    ASSERT_EQ(h.sent.size(), 1u);
    saved = h.d.groups();
  }
  Harness h(0s, 1min, 4h);
  h.d.restore(saved, {});
  h.fire(kBmw);  // the rule engine still sees it firing after the restart
  h.sim.advance(30min);
  EXPECT_TRUE(h.sent.empty());
  h.resolve(kBmw);
  h.sim.advance(1min);
  ASSERT_EQ(h.sent.size(), 1u);
  EXPECT_FALSE(h.sent[0].firing);
}

}  // namespace
}  // namespace greenlight::alerts

namespace greenlight::alerts {
namespace {

TEST(DispatcherTest, AlertmanagerReceiversHearFiringAlertsEveryResendInterval) {
  Harness h(0s, 1h, 4h);
  DispatcherConfig c;
  c.root.receiver = "am";
  c.root.group_wait = 0s;
  c.root.group_interval = 1h;
  c.root.repeat_interval = 4h;
  c.resend["am"] = 1min;
  h.d.setConfig(c);
  h.fire(kBmw);
  h.sim.runDue();
  h.sim.advance(3min);
  EXPECT_EQ(h.sent.size(), 4u);  // at 0, 1, 2 and 3 minutes
}

}  // namespace
}  // namespace greenlight::alerts

namespace greenlight::alerts {
namespace {

TEST(DispatcherTest, AlertmanagerReceiversKeepHearingAResolvedAlertFor15Minutes) {
  Harness h(0s, 1h, 4h);
  DispatcherConfig c;
  c.root.receiver = "am";
  c.root.group_wait = 0s;
  c.resend["am"] = 1min;
  h.d.setConfig(c);
  h.fire(kBmw);
  h.sim.runDue();
  h.sim.advance(30s);
  h.resolve(kBmw);
  h.sim.advance(30s);  // the next tick says "resolved"
  ASSERT_EQ(h.sent.size(), 2u);
  EXPECT_FALSE(h.sent[1].firing);
  h.sim.advance(10min);
  const size_t after10 = h.sent.size();
  EXPECT_GE(after10, 10u);  // re-sent every minute
  for (size_t i = 1; i < h.sent.size(); ++i) EXPECT_FALSE(h.sent[i].alerts.at(0).firing);
  h.sim.advance(10min);
  EXPECT_LE(h.sent.size(), after10 + 6);  // stops after 15 minutes
  EXPECT_EQ(h.d.groupCount(), 0u);
}

}  // namespace
}  // namespace greenlight::alerts
