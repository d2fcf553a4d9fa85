// Alerting end to end over real sockets: simulator fault -> probe fails -> alert fires -> a
// local receiver gets the exact webhook JSON; heal -> "resolved". Receiver faults: 500 then
// recovery, 429 with Retry-After.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "greenlight/app/service.h"
#include "greenlight/common/crypto.h"
#include "greenlight/common/time_format.h"
#include "greenlight/simulator/simulator.h"
#include "support/test_receiver.h"
#include "support/test_support.h"

namespace greenlight {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::RecordingReceiver;

const std::string kOperator = "operator-token-abcdefghij";

class AlertingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    simulator::SimulatorOptions o;
    o.tls = false;
    for (auto& oem : o.oems) oem.latency = oem.jitter = 0ms;
    sim_ = std::move(simulator::Simulator::start(o).value());
  }

  std::string config(const std::string& receiver_url, const std::string& extra_route = "",
                     const std::string& retry = "{initial: 100ms, max: 2s}", std::string receiver = "") {
    if (receiver.empty()) receiver = "webhook: {url: '" + receiver_url + "', timeout: 2s}";
    const std::string bmw = "http://127.0.0.1:" + std::to_string(sim_->oemPort("bmw"));
    return "log: {level: warn}\n"
           "admin:\n  listen: 127.0.0.1:0\n  tokens:\n    - {name: alice, role: operator, token: " + kOperator + "}\n"
           "probes:\n"
           "  - name: bmw-odometer\n    labels: {oem: bmw, integration: odometer}\n"
           "    interval: 200ms\n    timeout: 200ms\n    health: {failure_threshold: 1}\n"
           "    url: " + bmw + "/health\n"
           "alerting:\n"
           "  external_url: https://greenlight.example:9443\n"
           "  state_dir: " + dir_.path() + "/state\n"
           "  evaluation_interval: 100ms\n"
           "  retry: " + retry + "\n"
           "  rules:\n"
           "    - alert: ProbeFailing\n      kind: probe_health\n      matchers: ['oem=bmw']\n"
           "      labels: {severity: page}\n"
           "      annotations: {summary: '{{ $labels.probe }} failing', runbook_url: 'https://runbooks.example/probe'}\n"
           "  route:\n    receiver: oncall\n    group_by: [alertname, oem]\n    group_wait: 0s\n"
           "    group_interval: 1h\n    repeat_interval: 4h\n    resolve_immediately: true\n" + extra_route +
           "  receivers:\n    - name: oncall\n      " + receiver + "\n";
  }

  std::unique_ptr<app::Service> start(const std::string& yaml) {
    app::ServiceOptions o;
    o.config_path = dir_.write("g.yaml", yaml);
    o.admin_port = 0;
    auto s = app::Service::start(o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(s.value()) : nullptr;
  }

  void breakBmw() {
    simulator::Fault f;
    f.error_rate = 1;
    ASSERT_TRUE(sim_->setFault("bmw", f).ok());
  }

  static std::vector<json> bodies(const RecordingReceiver& r) {
    std::vector<json> out;
    for (const auto& q : r.requests()) out.push_back(json::parse(q.body));
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<simulator::Simulator> sim_;
};

TEST_F(AlertingTest, FaultFiresAWebhookInAlertmanagersFormatAndHealingResolvesIt) {
  RecordingReceiver receiver;
  auto svc = start(config(receiver.url()));
  ASSERT_TRUE(svc);
  breakBmw();
  ASSERT_TRUE(testing::waitUntil([&] { return receiver.count() >= 1; }));
  const auto firing = bodies(receiver).at(0);
  const json labels = {{"alertname", "ProbeFailing"}, {"severity", "page"}, {"oem", "bmw"},
                       {"integration", "odometer"}, {"probe", "bmw-odometer"}};
  EXPECT_EQ(firing["version"], "4");
  EXPECT_EQ(firing["groupKey"], "{}:{alertname=\"ProbeFailing\", oem=\"bmw\"}");
  EXPECT_EQ(firing["truncatedAlerts"], 0);
  EXPECT_EQ(firing["status"], "firing");
  EXPECT_EQ(firing["receiver"], "oncall");
  EXPECT_EQ(firing["groupLabels"], (json{{"alertname", "ProbeFailing"}, {"oem", "bmw"}}));
  EXPECT_EQ(firing["commonLabels"], labels);
  EXPECT_EQ(firing["commonAnnotations"],
            (json{{"summary", "bmw-odometer failing"}, {"runbook_url", "https://runbooks.example/probe"}}));
  EXPECT_EQ(firing["externalURL"], "https://greenlight.example:9443");
  ASSERT_EQ(firing["alerts"].size(), 1u);
  const json& a = firing["alerts"][0];
  EXPECT_EQ(a["status"], "firing");
  EXPECT_EQ(a["labels"], labels);
  EXPECT_EQ(a["annotations"], firing["commonAnnotations"]);
  EXPECT_TRUE(parseRfc3339(a["startsAt"]).has_value());
  EXPECT_EQ(a["endsAt"], "0001-01-01T00:00:00Z");
  EXPECT_EQ(a["generatorURL"], "https://greenlight.example:9443/alerts");
  EXPECT_EQ(a["fingerprint"], alerts::fingerprint(labels.get<alerts::Labels>()));
  EXPECT_EQ(receiver.requests()[0].headers.at("Content-Type"), "application/json");

  // The alert is listed by the API while it fires.
  auto listed = json::parse(testing::httpGet(svc->adminPort(), "/api/v1/alerts", kOperator).body);
  ASSERT_EQ(listed["alerts"].size(), 1u);
  EXPECT_EQ(listed["alerts"][0]["state"], "firing");
  ASSERT_TRUE(testing::waitUntil([&] { return svc->alerts()->outboxDepth() == 0; }));
  const std::string metrics = testing::httpGet(svc->adminPort(), "/metrics", kOperator).body;
  EXPECT_NE(metrics.find("greenlight_alerts{alertname=\"ProbeFailing\",state=\"firing\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("greenlight_notification_outbox_depth 0"), std::string::npos);
  EXPECT_NE(metrics.find("greenlight_notification_latency_seconds_count 1"), std::string::npos);

  sim_->clearFaults("bmw");
  ASSERT_TRUE(testing::waitUntil([&] { return receiver.count() >= 2; }));
  const auto resolved = bodies(receiver).at(1);
  EXPECT_EQ(resolved["status"], "resolved");
  EXPECT_EQ(resolved["alerts"][0]["status"], "resolved");
  EXPECT_EQ(resolved["alerts"][0]["startsAt"], a["startsAt"]);
  const auto ends = parseRfc3339(resolved["alerts"][0]["endsAt"]);
  ASSERT_TRUE(ends.has_value());
  EXPECT_GT(*ends, *parseRfc3339(a["startsAt"]));
  EXPECT_EQ(receiver.count(), 2u);  // once per problem: no duplicate firing
  EXPECT_NE(testing::httpGet(svc->adminPort(), "/metrics", kOperator)
                .body.find("greenlight_alerts{alertname=\"ProbeFailing\",state=\"firing\"} 0"),
            std::string::npos);
}

TEST_F(AlertingTest, ReceiverErrorsAreRetriedAndDeliveredOnce) {
  RecordingReceiver receiver;
  receiver.script({{500, "down", {}}, {500, "down", {}}});
  auto svc = start(config(receiver.url()));
  ASSERT_TRUE(svc);
  breakBmw();
  ASSERT_TRUE(testing::waitUntil([&] { return receiver.count() >= 3; }));
  ASSERT_TRUE(testing::waitUntil([&] { return svc->alerts()->outboxDepth() == 0; }));
  const auto b = bodies(receiver);
  for (const auto& x : b) EXPECT_EQ(x["status"], "firing");
  EXPECT_EQ(b[0], b[2]);  // the same payload, retried
  const auto metrics = testing::httpGet(svc->adminPort(), "/metrics", kOperator).body;
  EXPECT_NE(metrics.find("greenlight_notifications_total{outcome=\"retried\",receiver=\"oncall\"} 2"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("greenlight_notifications_total{outcome=\"sent\",receiver=\"oncall\"} 1"), std::string::npos);
}

TEST_F(AlertingTest, RateLimitedReceiverIsRetriedAfterWhatItAskedFor) {
  RecordingReceiver receiver;
  receiver.script({{429, "slow down", {{"Retry-After", "1"}}}});
  auto svc = start(config(receiver.url()));
  ASSERT_TRUE(svc);
  breakBmw();
  ASSERT_TRUE(testing::waitUntil([&] { return receiver.count() >= 2; }));
  const auto r = receiver.requests();
  EXPECT_GE(r[1].received - r[0].received, 900ms);  // not the 100 ms back-off: the receiver's 1 s
  EXPECT_TRUE(testing::waitUntil([&] { return svc->alerts()->outboxDepth() == 0; }));
}

TEST_F(AlertingTest, SlackGetsItsMessageAndItsRateLimitIsHonoured) {
  RecordingReceiver slack;
  slack.script({{429, R"({"ok":false,"retry_after":1})", {}}});  // Slack may say it in the body
  auto svc = start(config("", "", "{initial: 100ms, max: 2s}", "slack: {url: '" + slack.url("/services/T0/B0/x") + "'}"));
  ASSERT_TRUE(svc);
  breakBmw();
  ASSERT_TRUE(testing::waitUntil([&] { return slack.count() >= 2; }));
  const auto r = slack.requests();
  EXPECT_GE(r[1].received - r[0].received, 900ms);
  EXPECT_EQ(r[1].path, "/services/T0/B0/x");
  EXPECT_EQ(json::parse(r[1].body),
            (json{{"text", "[FIRING:1] ProbeFailing\n• firing: bmw-odometer failing <https://runbooks.example/probe|runbook>"
                           "\n<https://greenlight.example:9443/|Greenlight>"}}));
  sim_->clearFaults("bmw");
  ASSERT_TRUE(testing::waitUntil([&] { return slack.count() >= 3; }));
  EXPECT_EQ(json::parse(slack.requests()[2].body)["text"].get<std::string>().rfind("[RESOLVED] ProbeFailing", 0), 0u);
}

TEST_F(AlertingTest, PagerDutyGetsTriggerAndResolveWithOneDedupKey) {
  RecordingReceiver pd;
  pd.script({{500, "busy", {}}, {202, R"({"status":"success"})", {}}});
  const std::string key = "0123456789abcdef0123456789abcdef";
  auto svc = start(config("", "", "{initial: 1s, max: 2s}",  // time to look at the outbox
                          "pagerduty: {url: '" + pd.url("/v2/enqueue") + "', routing_key: '" + key + "'}"));
  ASSERT_TRUE(svc);
  breakBmw();
  // While the first attempt failed, the event waits in the outbox on disk, without the key.
  const std::string outbox = dir_.path() + "/state/outbox.json";
  ASSERT_TRUE(testing::waitUntil([&] {
    return pd.count() >= 1 && testing::readFile(outbox).find("dedup_key") != std::string::npos;
  }));
  EXPECT_EQ(testing::readFile(outbox).find(key), std::string::npos) << "a routing key written to disk";
  ASSERT_TRUE(testing::waitUntil([&] { return pd.count() >= 2; }));
  sim_->clearFaults("bmw");
  ASSERT_TRUE(testing::waitUntil([&] { return pd.count() >= 3; }));
  const json trigger = json::parse(pd.requests()[1].body);
  const json resolve = json::parse(pd.requests()[2].body);
  EXPECT_EQ(json::parse(pd.requests()[0].body), trigger);  // the retry is the same event
  const alerts::Labels labels = {{"alertname", "ProbeFailing"}, {"severity", "page"}, {"oem", "bmw"},
                                 {"integration", "odometer"}, {"probe", "bmw-odometer"}};
  const auto digest = sha256("oncall/" + alerts::fingerprint(labels));
  const std::string dedup = toHex(digest.data(), digest.size()).substr(0, 32);
  ASSERT_TRUE(parseRfc3339(trigger["payload"]["timestamp"]).has_value());
  const json expected_trigger = {
      {"routing_key", key},
      {"dedup_key", dedup},
      {"event_action", "trigger"},
      {"payload", {{"summary", "bmw-odometer failing"},
                   {"source", "https://greenlight.example:9443"},
                   {"severity", "critical"},
                   {"timestamp", trigger["payload"]["timestamp"]},
                   {"class", "ProbeFailing"},
                   {"custom_details", labels}}},
      {"links", json::array({{{"href", "https://runbooks.example/probe"}, {"text", "runbook"}}})}};
  EXPECT_EQ(trigger, expected_trigger);
  EXPECT_EQ(resolve, (json{{"routing_key", key}, {"dedup_key", dedup}, {"event_action", "resolve"}}));
}

TEST_F(AlertingTest, WatchdogAlwaysFiresToItsDeadMansSwitchReceiver) {
  RecordingReceiver oncall, deadman;
  std::string yaml = config(oncall.url());
  yaml.replace(yaml.find("  evaluation_interval:"), 0, "  watchdog: true\n");
  yaml.replace(yaml.find("  receivers:\n"), 0,
               "    routes: [{matchers: [alertname=Watchdog], receiver: deadman, group_wait: 0s, repeat_interval: 1h}]\n");
  yaml += "    - {name: deadman, webhook: {url: '" + deadman.url() + "'}}\n";
  auto svc = start(yaml);
  ASSERT_TRUE(svc);
  ASSERT_TRUE(testing::waitUntil([&] { return deadman.count() >= 1; }));
  const json w = json::parse(deadman.requests()[0].body);
  EXPECT_EQ(w["status"], "firing");
  EXPECT_EQ(w["alerts"][0]["labels"], (json{{"alertname", "Watchdog"}, {"severity", "none"}}));
  EXPECT_EQ(oncall.count(), 0u);  // the heartbeat goes to the dead-man's switch only
}

TEST_F(AlertingTest, SilenceHidesAnAlertThroughTheApi) {
  RecordingReceiver receiver;
  std::string yaml = config(receiver.url());
  yaml.replace(yaml.find("group_interval: 1h"), std::string("group_interval: 1h").size(), "group_interval: 200ms");
  auto svc = start(yaml);
  ASSERT_TRUE(svc);
  const int port = svc->adminPort();
  auto runs = [&] {  // completed runs of the probe, from /metrics
    const std::string m = testing::httpGet(port, "/metrics", kOperator).body;
    for (size_t at = m.find("greenlight_probe_runs_total{"); at != std::string::npos;
         at = m.find("greenlight_probe_runs_total{", at + 1)) {
      const std::string line = m.substr(at, m.find('\n', at) - at);
      if (line.find("probe=\"bmw-odometer\"") != std::string::npos) return std::stod(line.substr(line.rfind(' ') + 1));
    }
    return 0.0;
  };
  auto bad = testing::httpPost(port, "/api/v1/silences", R"({"matchers":["oem=bmw"],"duration":"1h"})", kOperator);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("comment"), std::string::npos);
  EXPECT_EQ(testing::httpPost(port, "/api/v1/silences", "{not json", kOperator).status, 400);
  auto made = testing::httpPost(port, "/api/v1/silences",
                                R"({"matchers":["oem=bmw"],"duration":"1h","comment":"BMW maintenance"})", kOperator);
  ASSERT_EQ(made.status, 200) << made.body;
  const std::string id = json::parse(made.body)["id"];
  breakBmw();
  ASSERT_TRUE(testing::waitUntil([&] {
    auto a = json::parse(testing::httpGet(port, "/api/v1/alerts", kOperator).body);
    return a["alerts"].size() == 1 && a["alerts"][0]["state"] == "firing";
  }));
  auto a = json::parse(testing::httpGet(port, "/api/v1/alerts", kOperator).body);
  EXPECT_EQ(a["alerts"][0]["silenced_by"], json::array({id}));
  auto listed = json::parse(testing::httpGet(port, "/api/v1/silences", kOperator).body);
  EXPECT_EQ(listed["silences"][0]["created_by"], "alice");
  EXPECT_EQ(listed["silences"][0]["state"], "active");
  // Two more probe runs: the group's flush (due when the alert fired, on the same loop) has
  // happened by then, and sent nothing.
  const double seen = runs();
  ASSERT_TRUE(testing::waitUntil([&] { return runs() >= seen + 2; }));
  EXPECT_EQ(receiver.count(), 0u);
  // Expired, the silence hides nothing: the next group interval notifies.
  ASSERT_EQ(testing::httpDelete(port, "/api/v1/silences/" + id, kOperator).status, 200);
  ASSERT_TRUE(testing::waitUntil([&] { return receiver.count() >= 1; }));
  EXPECT_EQ(json::parse(receiver.requests()[0].body)["status"], "firing");
}

}  // namespace
}  // namespace greenlight
