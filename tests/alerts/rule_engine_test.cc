#include "greenlight/alerts/rule_engine.h"

#include <gtest/gtest.h>

#include "greenlight/common/scheduler.h"

namespace greenlight::alerts {
namespace {

using namespace std::chrono_literals;

struct Harness {
  SimulatedTimeSource clock;
  std::vector<AlertUpdate> updates;
  RuleEngine engine{clock, [this](const AlertUpdate& u) { updates.push_back(u); }};

  void observe(Labels labels, bool ok, double latency = 0.01, std::optional<bool> unhealthy = std::nullopt) {
    engine.observe({std::move(labels), ok, latency, unhealthy});
  }
  // One observation per second for `d`, with the given outcome.
  void run(Duration d, const Labels& labels, const std::function<bool(int)>& ok) {
    for (int i = 0; i < d / 1s; ++i) {
      clock.advance(1s);
      observe(labels, ok(i));
      engine.tick();
    }
  }
  int firing(const std::string& severity = "") const {
    int n = 0;
    for (const auto& v : engine.snapshot()) {
      auto s = v.labels.find("severity");
      if (v.phase == Phase::kFiring && (severity.empty() || (s != v.labels.end() && s->second == severity))) ++n;
    }
    return n;
  }
};

Matcher m(const std::string& text) { return parseMatcher(text).value(); }

RuleSpec burnRule() {
  RuleSpec r;
  r.name = "OemSloBurn";
  r.kind = RuleKind::kBurnRate;
  r.objective = 0.999;
  r.burn_windows = defaultBurnWindows();
  r.by = {"oem"};
  return r;
}

TEST(RuleEngineTest, ProbeHealthFiresPerProbeMatchingTheSelector) {
  Harness h;
  RuleSpec r;
  r.name = "ProbeFailing";
  r.kind = RuleKind::kProbeHealth;
  r.matchers = {m("oem=bmw")};
  r.labels = {{"severity", "page"}};
  r.annotations = {{"summary", "{{ $labels.probe }} is failing"}};
  h.engine.setRules({r});
  h.observe({{"probe", "bmw-odometer"}, {"oem", "bmw"}}, false, 0.1, true);
  h.observe({{"probe", "ford-fuel"}, {"oem", "ford"}}, false, 0.1, true);  // not selected
  ASSERT_EQ(h.updates.size(), 1u);
  EXPECT_TRUE(h.updates[0].firing);
  EXPECT_EQ(h.updates[0].labels,
            (Labels{{"alertname", "ProbeFailing"}, {"oem", "bmw"}, {"probe", "bmw-odometer"}, {"severity", "page"}}));
  EXPECT_EQ(h.updates[0].annotations.at("summary"), "bmw-odometer is failing");
  h.clock.advance(5s);
  h.observe({{"probe", "bmw-odometer"}, {"oem", "bmw"}}, true, 0.1, false);
  ASSERT_EQ(h.updates.size(), 2u);
  EXPECT_FALSE(h.updates[1].firing);
  EXPECT_EQ(h.updates[1].ends_at - h.updates[1].starts_at, 5s);
}

TEST(RuleEngineTest, FailureRatioFansOutPerLabelValue) {
  Harness h;
  RuleSpec r;
  r.name = "OemErrors";
  r.kind = RuleKind::kFailureRatio;
  r.by = {"oem"};
  r.window = 5min;
  r.threshold = 0.2;
  r.min_samples = 5;
  h.engine.setRules({r});
  for (int i = 0; i < 10; ++i) {
    h.clock.advance(1s);
    h.observe({{"probe", "bmw-a"}, {"oem", "bmw"}}, i % 2 == 0);      // 50% failing
    h.observe({{"probe", "bmw-b"}, {"oem", "bmw"}}, true);            // bmw overall 25%
    h.observe({{"probe", "ford-a"}, {"oem", "ford"}}, i % 10 != 0);  // 10%
  }
  ASSERT_EQ(h.firing(), 1);
  const auto v = h.engine.snapshot();
  EXPECT_EQ(v[0].labels, (Labels{{"alertname", "OemErrors"}, {"oem", "bmw"}}));
  EXPECT_NEAR(v[0].value, 0.25, 1e-9);
}

TEST(RuleEngineTest, RatioNeedsMinimumSamplesBeforeItCounts) {
  Harness h;
  RuleSpec r;
  r.name = "Errors";
  r.kind = RuleKind::kFailureRatio;
  r.threshold = 0.1;
  r.min_samples = 3;
  h.engine.setRules({r});
  h.observe({{"probe", "p"}}, false);
  h.observe({{"probe", "p"}}, false);
  EXPECT_EQ(h.firing(), 0);
  h.observe({{"probe", "p"}}, false);
  EXPECT_EQ(h.firing(), 1);
}

TEST(RuleEngineTest, LatencyQuantileOverWindow) {
  Harness h;
  RuleSpec r;
  r.name = "Slow";
  r.kind = RuleKind::kLatency;
  r.quantile = 0.9;
  r.threshold = 0.5;
  r.window = 1min;
  h.engine.setRules({r});
  for (int i = 0; i < 20; ++i) {
    h.clock.advance(1s);
    h.observe({{"probe", "p"}}, true, 0.1);
  }
  EXPECT_EQ(h.firing(), 0);
  for (int i = 0; i < 20; ++i) {
    h.clock.advance(1s);
    h.observe({{"probe", "p"}}, true, 2.0);
  }
  EXPECT_EQ(h.firing(), 1);
  // Slow results age out of the window.
  h.clock.advance(2min);
  h.observe({{"probe", "p"}}, true, 0.1);
  EXPECT_EQ(h.firing(), 0);
}

TEST(RuleEngineTest, ForDelaysFiringAndTickFiresWithoutNewData) {
  Harness h;
  RuleSpec r;
  r.name = "Down";
  r.kind = RuleKind::kProbeHealth;
  r.for_duration = 30s;
  h.engine.setRules({r});
  h.observe({{"probe", "p"}}, false, 0.1, true);
  EXPECT_EQ(h.engine.snapshot().at(0).phase, Phase::kPending);
  h.clock.advance(29s);
  h.engine.tick();
  EXPECT_EQ(h.firing(), 0);
  h.clock.advance(1s);
  h.engine.tick();
  EXPECT_EQ(h.firing(), 1);
  ASSERT_EQ(h.updates.size(), 1u);
}

TEST(RuleEngineTest, NoDataAlertsWhenConfigured) {
  Harness h;
  RuleSpec r;
  r.name = "Stale";
  r.kind = RuleKind::kFailureRatio;
  r.window = 1min;
  r.threshold = 0.5;
  r.no_data = NoDataPolicy::kAlert;
  r.annotations = {{"value", "{{ $value }}"}};
  h.engine.setRules({r});
  h.observe({{"probe", "p"}}, true);
  EXPECT_EQ(h.firing(), 0);
  h.clock.advance(3min);  // no result for longer than the window
  h.engine.tick();
  ASSERT_EQ(h.firing(), 1);
  EXPECT_EQ(h.updates.back().annotations.at("value"), "no data");
}

TEST(RuleEngineTest, BurnRateTotalOutagePagesWithinAboutAMinute) {
  Harness h;
  h.engine.setRules({burnRule()});
  const Labels l = {{"probe", "bmw-odometer"}, {"oem", "bmw"}};
  h.run(2h, l, [](int) { return true; });
  ASSERT_EQ(h.firing(), 0);
  int seconds = 0;
  while (h.firing("page") == 0 && seconds < 600) {
    h.run(1s, l, [](int) { return false; });
    ++seconds;
  }
  EXPECT_GE(seconds, 30);  // 14.4 x 0.1% of an hour of history: ~52 s
  EXPECT_LE(seconds, 75);
  EXPECT_EQ(h.updates.back().labels.at("severity"), "page");
  EXPECT_EQ(h.updates.back().labels.at("oem"), "bmw");
}

TEST(RuleEngineTest, BurnRateAtTheObjectiveNeverPages) {
  Harness h;
  h.engine.setRules({burnRule()});
  const Labels l = {{"probe", "bmw-odometer"}, {"oem", "bmw"}};
  int pages = 0;
  for (int hour = 0; hour < 8; ++hour) {
    h.run(1h, l, [](int i) { return i % 1000 != 999; });  // 0.1% failing
    pages += h.firing("page");
  }
  EXPECT_EQ(pages, 0);
  for (const auto& u : h.updates) EXPECT_NE(u.labels.at("severity"), "page");
}

TEST(RuleEngineTest, EventsFireAndResolveAfterKeepFiringFor) {
  Harness h;
  RuleSpec r;
  r.name = "RolloutRolledBack";
  r.kind = RuleKind::kEvent;
  r.event = "rollout_rolled_back";
  r.keep_firing_for = 5min;
  r.by = {"service"};
  h.engine.setRules({r});
  h.engine.raise("rollout_rolled_back", {{"service", "checkout"}, {"release", "v2"}}, {{"summary", "analysis failed"}});
  h.engine.raise("other_event", {{"service", "checkout"}}, {});
  ASSERT_EQ(h.updates.size(), 1u);
  EXPECT_EQ(h.updates[0].labels, (Labels{{"alertname", "RolloutRolledBack"}, {"service", "checkout"}}));
  EXPECT_EQ(h.updates[0].annotations.at("summary"), "analysis failed");
  h.clock.advance(4min);
  h.engine.tick();
  EXPECT_EQ(h.firing(), 1);
  h.clock.advance(1min);
  h.engine.tick();
  EXPECT_EQ(h.firing(), 0);
  EXPECT_FALSE(h.updates.back().firing);
}

TEST(RuleEngineTest, RestoredFiringInstancesDoNotNotifyAgain) {
  Harness h;
  RuleSpec r;
  r.name = "Down";
  r.kind = RuleKind::kProbeHealth;
  h.engine.setRules({r});
  const WallTime started = h.clock.wallNow() - 10min;
  h.engine.restore({{"Down", {{"probe", "p"}}, "", started, 1}});
  EXPECT_EQ(h.firing(), 1);
  h.observe({{"probe", "p"}}, false, 0.1, true);  // still failing: no new "firing"
  EXPECT_TRUE(h.updates.empty());
  h.observe({{"probe", "p"}}, true, 0.1, false);
  ASSERT_EQ(h.updates.size(), 1u);
  EXPECT_FALSE(h.updates[0].firing);
  EXPECT_EQ(h.updates[0].starts_at, started);
}

TEST(RuleEngineTest, QuietSeriesAreForgotten) {
  Harness h;
  RuleSpec r;
  r.name = "Errors";
  r.kind = RuleKind::kFailureRatio;
  r.threshold = 0.5;
  r.window = 1min;
  h.engine.setRules({r});
  h.observe({{"probe", "removed"}}, true);
  EXPECT_EQ(h.engine.seriesCount(), 1u);
  h.clock.advance(11min);
  h.engine.tick();
  EXPECT_EQ(h.engine.seriesCount(), 0u);
}

}  // namespace
}  // namespace greenlight::alerts

namespace greenlight::alerts {
namespace {

RuleSpec ratioRule(Labels labels = {}) {
  RuleSpec r;
  r.name = "Errors";
  r.kind = RuleKind::kFailureRatio;
  r.window = 5min;
  r.threshold = 0.5;
  r.labels = std::move(labels);
  return r;
}

TEST(RuleEngineTest, ReloadKeepsWindowsAndFiringAlertsOfUnchangedRules) {
  Harness h;
  h.engine.setRules({ratioRule()});
  for (int i = 0; i < 4; ++i) h.observe({{"probe", "p"}}, false);
  ASSERT_EQ(h.firing(), 1);
  const size_t before = h.updates.size();
  h.engine.setRules({ratioRule()});  // e.g. a reload that added a probe
  h.observe({{"probe", "p"}}, true);  // 4 of 5 still failing: the window survived
  EXPECT_EQ(h.firing(), 1);
  EXPECT_EQ(h.updates.size(), before);  // nothing re-sent
}

TEST(RuleEngineTest, ReloadThatChangesAnAlertsLabelsResolvesTheOldOne) {
  Harness h;
  h.engine.setRules({ratioRule({{"severity", "ticket"}})});
  h.observe({{"probe", "p"}}, false);
  ASSERT_EQ(h.updates.size(), 1u);
  h.engine.setRules({ratioRule({{"severity", "page"}})});
  ASSERT_EQ(h.updates.size(), 2u);
  EXPECT_FALSE(h.updates[1].firing);
  EXPECT_EQ(h.updates[1].labels.at("severity"), "ticket");
  h.observe({{"probe", "p"}}, false);
  ASSERT_EQ(h.updates.size(), 3u);
  EXPECT_TRUE(h.updates[2].firing);
  EXPECT_EQ(h.updates[2].labels.at("severity"), "page");
}

TEST(RuleEngineTest, RemovedRulesResolveTheirFiringAlerts) {
  Harness h;
  h.engine.setRules({ratioRule()});
  h.observe({{"probe", "p"}}, false);
  h.engine.setRules({});
  ASSERT_EQ(h.updates.size(), 2u);
  EXPECT_FALSE(h.updates[1].firing);
}

}  // namespace
}  // namespace greenlight::alerts

namespace greenlight::alerts {
namespace {

TEST(RuleEngineTest, QuorumFiresWhenEnoughProbesOfAGroupAreUnhealthy) {
  Harness h;
  RuleSpec r;
  r.name = "OemDown";
  r.kind = RuleKind::kProbeHealth;
  r.by = {"oem"};
  r.quorum = 2;
  h.engine.setRules({r});
  h.observe({{"probe", "bmw-eu"}, {"oem", "bmw"}, {"location", "eu"}}, false, 0.1, true);
  h.observe({{"probe", "bmw-us"}, {"oem", "bmw"}, {"location", "us"}}, true, 0.1, false);
  EXPECT_EQ(h.firing(), 0) << "one location failing is not a quorum";
  h.observe({{"probe", "bmw-us"}, {"oem", "bmw"}, {"location", "us"}}, false, 0.1, true);
  ASSERT_EQ(h.firing(), 1);
  EXPECT_EQ(h.updates.back().labels, (Labels{{"alertname", "OemDown"}, {"oem", "bmw"}}));
  EXPECT_EQ(h.updates.back().value, 2);
  h.observe({{"probe", "bmw-eu"}, {"oem", "bmw"}, {"location", "eu"}}, true, 0.1, false);
  EXPECT_EQ(h.firing(), 0);
}

}  // namespace
}  // namespace greenlight::alerts
