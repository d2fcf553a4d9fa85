// Delivery survives a kill -9 during a receiver outage (the real binary), and a real
// Alertmanager (Debian package) takes alerts over its API v2.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "greenlight/alerts/notifier.h"
#include "greenlight/simulator/simulator.h"
#include "support/test_receiver.h"
#include "support/test_support.h"

namespace greenlight {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ChildProcess;
using testing::RecordingReceiver;

class AlertingProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    simulator::SimulatorOptions o;
    o.tls = false;
    for (auto& oem : o.oems) oem.latency = oem.jitter = 0ms;
    sim_ = std::move(simulator::Simulator::start(o).value());
  }
  std::string config(int admin_port, const std::string& receiver) {
    return "log: {level: info}\nadmin: {listen: 127.0.0.1:" + std::to_string(admin_port) + "}\n"
           "probes:\n"
           "  - {name: bmw-odometer, labels: {oem: bmw}, interval: 200ms, timeout: 200ms,\n"
           "     health: {failure_threshold: 1}, url: 'http://127.0.0.1:" + std::to_string(sim_->oemPort("bmw")) + "/health'}\n"
           "alerting:\n"
           "  state_dir: " + dir_.path() + "/state\n"
           "  evaluation_interval: 100ms\n"
           "  retry: {initial: 100ms, max: 500ms}\n"
           "  rules:\n    - {alert: ProbeFailing, kind: probe_health, labels: {severity: page}}\n"
           "  route: {receiver: r, group_wait: 0s, group_interval: 1h, repeat_interval: 4h, resolve_immediately: true}\n"
           "  receivers:\n    - name: r\n      " + receiver + "\n";
  }
  void breakBmw() {
    simulator::Fault f;
    f.error_rate = 1;
    ASSERT_TRUE(sim_->setFault("bmw", f).ok());
  }
  // The run after a kill: the receiver hears "firing" (from what the killed run left); healing
  // brings "resolved" next, not a second "firing". Returns what it received.
  std::vector<RecordingReceiver::Request> firingThenResolved(const RecordingReceiver& receiver) {
    const std::string second_log = dir_.path() + "/second.log";
    EXPECT_TRUE(testing::waitUntil([&] { return receiver.count() >= 1; })) << testing::readFile(second_log);
    if (receiver.count() < 1) return {};
    EXPECT_EQ(json::parse(receiver.requests()[0].body)["status"], "firing");
    sim_->clearFaults("bmw");
    EXPECT_TRUE(testing::waitUntil([&] { return receiver.count() >= 2; })) << testing::readFile(second_log);
    const auto r = receiver.requests();
    if (r.size() < 2) return r;
    EXPECT_EQ(json::parse(r[1].body)["status"], "resolved") << r[1].body << "\nfirst run:\n"
                                                           << testing::readFile(dir_.path() + "/first.log")
                                                           << "\nsecond run:\n" << testing::readFile(second_log);
    return r;
  }
  testing::TempDir dir_;
  std::unique_ptr<simulator::Simulator> sim_;
};

TEST_F(AlertingProcessTest, KilledDuringAReceiverOutageDeliversAfterRestartAndPagesOnce) {
  const int receiver_port = testing::freePort();  // nothing listens yet: the receiver is down
  const std::string url = "http://127.0.0.1:" + std::to_string(receiver_port) + "/hook";
  const std::string path = dir_.write("g.yaml", config(testing::freePort(), "webhook: {url: '" + url + "'}"));
  breakBmw();
  {
    ChildProcess first({GREENLIGHT_BINARY, "run", "--config", path}, dir_.path() + "/first.log");
    ASSERT_TRUE(testing::waitUntil([&] {
      return testing::readFile(dir_.path() + "/state/outbox.json").find("\"receiver\":\"r\"") != std::string::npos;
    })) << testing::readFile(dir_.path() + "/first.log");
    // It has tried (and failed) at least once before the kill.
    ASSERT_TRUE(testing::waitUntil([&] {
      return testing::readFile(dir_.path() + "/first.log").find("notification to r failed") != std::string::npos;
    }));
    first.signal(SIGKILL);
    first.wait(5s);
  }
  RecordingReceiver receiver(receiver_port);
  ChildProcess second({GREENLIGHT_BINARY, "run", "--config", path}, dir_.path() + "/second.log");
  // Still failing after the restart: the alert stays firing without a second page. Healing
  // brings exactly one "resolved".
  const auto r = firingThenResolved(receiver);
  ASSERT_GE(r.size(), 2u);
  EXPECT_EQ(json::parse(r[0].body)["alerts"][0]["startsAt"], json::parse(r[1].body)["alerts"][0]["startsAt"]);
  EXPECT_EQ(r.size(), 2u);
  EXPECT_NE(testing::readFile(dir_.path() + "/second.log").find("left by the previous run"), std::string::npos);
}

// The two crash windows around a new notification, hit exactly with a failpoint: after the
// outbox entry is on disk but before alerts.json records it, and after both but before the
// delivery thread may send it. Either way the receiver hears nothing from the dying run (the
// entry is held until the state is saved), the next run pages once, and healing resolves once.
class CrashWindowTest : public AlertingProcessTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(CrashWindowTest, KillAroundQueueingPagesExactlyOnce) {
  RecordingReceiver receiver;
  const int admin_port = testing::freePort();
  const std::string path = dir_.write("g.yaml", config(admin_port, "webhook: {url: '" + receiver.url() + "'}"));
  breakBmw();
  {
    ChildProcess first({GREENLIGHT_BINARY, "run", "--config", path}, dir_.path() + "/first.log",
                       {{"GREENLIGHT_FAILPOINT", GetParam()}});
    EXPECT_EQ(first.wait(10s), 86) << testing::readFile(dir_.path() + "/first.log");
  }
  EXPECT_EQ(receiver.count(), 0u);
  ChildProcess second({GREENLIGHT_BINARY, "run", "--config", path}, dir_.path() + "/second.log");
  ASSERT_GE(firingThenResolved(receiver).size(), 2u);
  // Nothing else is on its way: the outbox is empty and no group is left to flush.
  ASSERT_TRUE(testing::waitUntil([&] {
    return testing::httpGet(admin_port, "/metrics").body.find("greenlight_notification_outbox_depth 0") != std::string::npos;
  }));
  EXPECT_EQ(receiver.count(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Failpoints, CrashWindowTest, ::testing::Values("alerts.queued", "alerts.saved"),
                         [](const auto& info) { return std::string(info.param) == "alerts.queued" ? "Queued" : "Saved"; });

TEST_F(AlertingProcessTest, RealAlertmanagerReceivesAndResolvesTheAlert) {
  const int am_port = testing::freePort();
  const std::string am_cfg = dir_.write("am.yml", "route: {receiver: blackhole}\nreceivers: [{name: blackhole}]\n");
  ChildProcess am({"prometheus-alertmanager", "--config.file=" + am_cfg, "--storage.path=" + dir_.path() + "/am",
                   "--web.listen-address=127.0.0.1:" + std::to_string(am_port), "--cluster.listen-address="},
                  dir_.path() + "/am.log");
  ASSERT_TRUE(testing::waitUntil([&] { return testing::httpGet(am_port, "/-/ready").status == 200; }))
      << testing::readFile(dir_.path() + "/am.log");
  const std::string path = dir_.write(
      "g.yaml", config(testing::freePort(), "alertmanager: {url: 'http://127.0.0.1:" + std::to_string(am_port) + "'}"));
  ChildProcess gl({GREENLIGHT_BINARY, "run", "--config", path}, dir_.path() + "/gl.log");
  breakBmw();
  auto activeAlerts = [&] {
    auto r = testing::httpGet(am_port, "/api/v2/alerts?active=true");
    return r.status == 200 ? json::parse(r.body) : json::array();
  };
  ASSERT_TRUE(testing::waitUntil([&] { return activeAlerts().size() == 1; })) << testing::readFile(dir_.path() + "/gl.log");
  const json a = activeAlerts()[0];
  EXPECT_EQ(a["labels"]["alertname"], "ProbeFailing");
  EXPECT_EQ(a["labels"]["probe"], "bmw-odometer");
  EXPECT_EQ(a["labels"]["severity"], "page");
  EXPECT_EQ(a["status"]["state"], "active");
  sim_->clearFaults("bmw");
  // The resolution carries a real endsAt: Alertmanager drops the alert from the active ones.
  ASSERT_TRUE(testing::waitUntil([&] { return activeAlerts().empty(); })) << testing::readFile(dir_.path() + "/gl.log");
}

}  // namespace
}  // namespace greenlight
