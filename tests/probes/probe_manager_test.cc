#include "greenlight/probes/probe_manager.h"

#include <gtest/gtest.h>

#include <optional>

#include "support/test_support.h"

namespace greenlight::probes {
namespace {

using namespace std::chrono_literals;
using testing::ScriptedTransport;

// Answers every request at once with 200 (a fast target).
class InstantTransport final : public Transport {
 public:
  explicit InstantTransport(Scheduler& s) : scheduler_(s) {}
  RequestId start(TransportRequest req, std::function<void(TransportResult)> done) override {
    starts.push_back({req.url, scheduler_.time().monotonicNow()});
    headers.push_back(req.headers);
    RequestId id = next_++;
    // Completes on the next timer turn: never inside start().
    scheduler_.scheduleAfter(0ms, [done] { done(ScriptedTransport::ok(ok_status)); });
    return id;
  }
  void cancel(RequestId) override {}
  std::vector<std::pair<std::string, MonoTime>> starts;
  std::vector<std::vector<std::pair<std::string, std::string>>> headers;
  static inline int ok_status = 200;

 private:
  Scheduler& scheduler_;
  RequestId next_ = 1;
};

ProbeSpec probe(const std::string& name, Duration interval, Duration timeout = 1s) {
  ProbeSpec p;
  p.name = name;
  p.interval = interval;
  p.timeout = timeout;
  StepSpec s;
  s.name = "main";
  s.url = "http://" + name + "/";
  s.conditions.push_back(parseCondition("[STATUS] == 200").value());
  p.steps.push_back(s);
  return p;
}

// The manager under test on a simulated clock, with a target that answers at once; the seed
// fixes how first runs are spread.
class InstantManagerTest : public ::testing::Test {
 protected:
  ProbeManager& manager(uint64_t seed, std::shared_ptr<ProbeMetrics> metrics = std::make_shared<ProbeMetrics>()) {
    random_.emplace(seed);
    manager_.emplace(transport, sim.scheduler(), *random_, std::move(metrics));
    return *manager_;
  }
  SimulatedScheduler sim;
  InstantTransport transport{sim.scheduler()};

 private:
  std::optional<DefaultRandom> random_;
  std::optional<ProbeManager> manager_;  // last: stops before what it uses
};

int64_t ms(MonoTime t) { return toMillis(t.time_since_epoch()); }

TEST_F(InstantManagerTest, FirstRunsAreSpreadAcrossTheInterval) {
  ProbeManager& m = manager(42);
  std::vector<ProbeSpec> specs;
  for (int i = 0; i < 200; ++i) specs.push_back(probe("p" + std::to_string(i), 10s));
  m.apply(specs);
  sim.advance(10s - 1ns);
  ASSERT_EQ(transport.starts.size(), 200u) << "each probe ran once in its first interval";
  std::array<int, 10> per_second{};
  for (const auto& [url, t] : transport.starts) per_second[ms(t) / 1000]++;
  for (int n : per_second) {
    EXPECT_GT(n, 5) << "no empty second";
    EXPECT_LT(n, 40) << "no burst";  // 20 expected per second
  }
}

TEST_F(InstantManagerTest, RunsAtAFixedRateFromItsPhase) {
  ProbeManager& m = manager(1);
  m.apply({probe("a", 5s)});
  sim.advance(30s);
  ASSERT_GE(transport.starts.size(), 6u);
  const int64_t phase = ms(transport.starts[0].second);
  EXPECT_LT(phase, 5000);
  for (size_t i = 0; i < transport.starts.size(); ++i) {
    EXPECT_EQ(ms(transport.starts[i].second), phase + 5000 * static_cast<int64_t>(i));
  }
}

TEST(ProbeManager, ASlowTargetNeverDelaysAnother) {
  SimulatedScheduler sim;
  ScriptedTransport transport;  // never answers: every run ends by its timeout
  DefaultRandom random(3);
  ProbeManager m(transport, sim.scheduler(), random, std::make_shared<ProbeMetrics>());
  std::vector<std::string> results;
  m.addListener([&](const ProbeSpec& s, const ProbeResult& r, const HealthState&, HealthTransition) {
    results.push_back(s.name + ":" + reasonName(r.reason));
  });
  m.apply({probe("slow", 10s, 9s), probe("fast", 1s, 500ms)});
  sim.advance(20s);
  int fast_runs = 0;
  for (const auto& req : transport.history()) fast_runs += req.url == "http://fast/";
  EXPECT_GE(fast_runs, 19);
  EXPECT_LE(fast_runs, 20);
  EXPECT_NE(std::find(results.begin(), results.end(), "slow:timeout"), results.end());
}

TEST(ProbeManager, AnOverlappingRunIsSkippedAndCounted) {
  SimulatedScheduler sim;
  ScriptedTransport transport;
  DefaultRandom random(3);
  auto metrics = std::make_shared<ProbeMetrics>();
  ProbeManager m(transport, sim.scheduler(), random, metrics);
  m.apply({probe("a", 1s, 2500ms)});  // timeout past the interval (config forbids; be safe anyway)
  sim.advance(10s);
  const std::string text = metrics->exposition();
  const std::string line = "greenlight_probe_skipped_total{probe=\"a\"} ";
  auto at = text.find(line);
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GT(std::stoi(text.substr(at + line.size())), 0);
  EXPECT_LE(transport.history().size(), 4u) << "never more than one run in flight";
}

TEST_F(InstantManagerTest, HealthTransitionsReachListeners) {
  ProbeManager& m = manager(5);
  std::vector<HealthTransition> transitions;
  m.addListener([&](const ProbeSpec&, const ProbeResult&, const HealthState&, HealthTransition t) {
    if (t != HealthTransition::kNone) transitions.push_back(t);
  });
  ProbeSpec p = probe("a", 1s);
  p.health = {2, 1};
  m.apply({p});
  sim.advance(3s);
  InstantTransport::ok_status = 500;
  sim.advance(3s);
  InstantTransport::ok_status = 200;
  sim.advance(2s);
  EXPECT_EQ(transitions, (std::vector<HealthTransition>{HealthTransition::kBecameHealthy,
                                                        HealthTransition::kBecameUnhealthy,
                                                        HealthTransition::kBecameHealthy}));
  auto snap = m.snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].health.health, Health::kHealthy);
  ASSERT_TRUE(snap[0].last.has_value());
}

TEST_F(InstantManagerTest, ARunOnceCarriesExtraHeadersAndLeavesTheProbesHealthAlone) {
  ProbeManager& m = manager(7);
  int listened = 0;
  m.addListener([&](const ProbeSpec&, const ProbeResult&, const HealthState&, HealthTransition) { ++listened; });
  m.apply({probe("a", 1h)});
  InstantTransport::ok_status = 500;
  std::optional<ProbeResult> got;
  bool called = false;
  m.runOnce("a", {{"X-Greenlight-Color", "green"}}, [&](std::optional<ProbeResult> r) {
    called = true;
    got = std::move(r);
  });
  sim.advance(1ms);
  InstantTransport::ok_status = 200;
  ASSERT_TRUE(called);
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(got->success);
  EXPECT_NE(got->message.find("[STATUS] == 200"), std::string::npos) << got->message;
  ASSERT_EQ(transport.headers.size(), 1u);
  EXPECT_EQ(transport.headers[0], (std::vector<std::pair<std::string, std::string>>{{"X-Greenlight-Color", "green"}}));
  EXPECT_EQ(listened, 0) << "a one-off run is not the probe's scheduled result";
  const auto snap = m.snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_FALSE(snap[0].last.has_value());
  EXPECT_EQ(snap[0].health.consecutive_failures, 0);
  bool unknown_called = false;
  m.runOnce("b", {}, [&](std::optional<ProbeResult> r) {
    unknown_called = true;
    EXPECT_FALSE(r.has_value());
  });
  EXPECT_TRUE(unknown_called) << "no such probe: answered at once";
}

TEST_F(InstantManagerTest, KeepsOnlyTheLastRunsDurationsAndOutcomes) {
  ProbeManager& m = manager(7);
  m.apply({probe("a", 1s)});
  sim.advance(40s);
  InstantTransport::ok_status = 500;
  sim.advance(2s);
  InstantTransport::ok_status = 200;
  auto snap = m.snapshot();
  ASSERT_EQ(snap.size(), 1u);
  ASSERT_EQ(snap[0].recent.size(), ProbeStatus::kRecentRuns) << "bounded: older runs are dropped";
  EXPECT_FALSE(snap[0].recent.back().success) << "newest last";
  EXPECT_FALSE(snap[0].recent[ProbeStatus::kRecentRuns - 2].success);
  EXPECT_TRUE(snap[0].recent[ProbeStatus::kRecentRuns - 3].success);
}

TEST_F(InstantManagerTest, ApplyKeepsUnchangedProbesAndDropsRemovedOnes) {
  auto metrics = std::make_shared<ProbeMetrics>();
  ProbeManager& m = manager(9, metrics);
  m.apply({probe("keep", 10s), probe("drop", 10s)});
  sim.advance(25s);
  const size_t keep_before = std::count_if(transport.starts.begin(), transport.starts.end(),
                                           [](auto& s) { return s.first == "http://keep/"; });
  const MonoTime last_keep = std::find_if(transport.starts.rbegin(), transport.starts.rend(),
                                          [](auto& s) { return s.first == "http://keep/"; })->second;
  ProbeSpec relabelled = probe("keep", 10s);
  relabelled.labels = {{"oem", "bmw"}};
  m.apply({relabelled, probe("new", 10s)});
  sim.advance(20s);
  std::vector<MonoTime> keep_after;
  for (auto& [url, t] : transport.starts) {
    if (url == "http://keep/" && t > last_keep) keep_after.push_back(t);
    EXPECT_FALSE(url == "http://drop/" && ms(t) > 25000) << "a removed probe ran";
  }
  ASSERT_EQ(keep_after.size(), 2u);
  EXPECT_EQ(keep_after[0] - last_keep, 10s) << "the unchanged probe kept its phase";
  EXPECT_GE(keep_before, 2u);
  EXPECT_EQ(metrics->exposition().find("probe=\"drop\""), std::string::npos) << "a removed probe kept series";
  EXPECT_NE(metrics->exposition().find("probe=\"keep\",oem=\"bmw\""), std::string::npos) << "relabelled";
  EXPECT_EQ(m.snapshot().size(), 2u);
}

}  // namespace
}  // namespace greenlight::probes
