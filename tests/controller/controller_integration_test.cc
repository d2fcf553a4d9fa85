// Rollouts end to end on real sockets: two releases of a sample service (v1 on blue, v2 on
// green) behind `greenlight proxy` or a real HAProxy, client load for the whole rollout, the
// controller inside `greenlight run` (in-process, or the binary when it must be killed).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "greenlight/app/proxy_service.h"
#include "greenlight/app/service.h"
#include "greenlight/controller/audit_log.h"
#include "support/keep_alive_load.h"
#include "support/test_backend.h"
#include "support/test_receiver.h"
#include "support/test_support.h"

namespace greenlight::controller {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::TestBackend;

const std::string kOperator = "operator-token-abcdefghij";
const std::string kAdmin = "admin-token-abcdefghijklmn";

// Load whose good answers come from release v1 or v2.
class Load : public testing::KeepAliveLoad {
 public:
  Load(int port, int threads)
      : testing::KeepAliveLoad(port, threads, [](const std::string& b) { return b == "v1" || b == "v2"; }) {}
  int v2() const { return answeredBy("v2"); }
};

class RolloutE2E : public ::testing::Test {
 protected:
  void startProxy() {
    socket_ = dir_.path() + "/proxy.sock";
    const std::string cfg = dir_.write("proxy.yaml",
        "log: {level: warn}\nadmin: {listen: 127.0.0.1:0}\nproxy:\n"
        "  state_file: " + dir_.path() + "/routes.json\n  runtime_api: {socket: " + socket_ + "}\n  threads: 2\n"
        "  services:\n    - name: vehicles\n      listen: 127.0.0.1:0\n"
        "      blue: [" + v1_.address() + "]\n      green: [" + v2_.address() + "]\n"
        "      weights: {blue: 100, green: 0}\n      preview: {header: X-Greenlight-Color}\n");
    auto p = app::ProxyService::start(cfg, 0);
    ASSERT_TRUE(p.ok()) << p.status().message();
    proxy_ = std::move(p.value());
    proxy_port_ = proxy_->port("vehicles");
  }

  std::string config(const std::string& router, int port, int admin_port = 0) {
    return header(admin_port) + service("vehicles", router, v1_, v2_, port);
  }
  std::string header(int admin_port = 0) {
    return "log: {level: info}\n"
           "admin:\n  listen: 127.0.0.1:" + std::to_string(admin_port) + "\n"
           "  tokens: [{name: alice, role: operator, token: " + kOperator + "}, {name: root, role: admin, token: " + kAdmin + "}]\n"
           "alerting:\n"
           "  rules: [{alert: RolloutRolledBack, kind: event, event: rollout_rolled_back, by: [service, release],\n"
           "           labels: {severity: page}}]\n"
           "  route: {receiver: r, group_wait: 0s}\n"
           "  receivers: [{name: r, webhook: {url: '" + receiver_.url() + "'}}]\n"
           "rollouts:\n"
           "  state_dir: " + dir_.path() + "/controller\n"
           "  tick: 50ms\n"
           "  services:\n";
  }
  static std::string service(const std::string& name, const std::string& router, const TestBackend& blue,
                             const TestBackend& green, int port) {
    return "    - name: " + name + "\n"
           "      release: v1\n"
           "      router: " + router + "\n"
           "      blue: [" + blue.address() + "]\n      green: [" + green.address() + "]\n"
           "      ready: {path: /health}\n"
           "      preview: {url: 'http://127.0.0.1:" + std::to_string(port) + "/health'}\n"
           "      strategy: {steps: [25, 50, 100], preview_requests: 3, progress_deadline: 30s}\n"
           "      analysis: {interval: 300ms, count: 2, max_error_ratio: 0.05, min_requests: 10}\n";
  }
  std::string builtin() { return "{builtin: {socket: " + socket_ + ", service: vehicles}}"; }

  std::unique_ptr<app::Service> startController(const std::string& yaml) {
    app::ServiceOptions o;
    o.config_path = dir_.write("g.yaml", yaml);
    o.admin_port = 0;
    auto s = app::Service::start(o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(s.value()) : nullptr;
  }

  static json status(int admin, const std::string& service = "vehicles") {
    auto r = testing::httpGet(admin, "/api/v1/rollouts/" + service, kOperator);
    return r.status == 200 ? json::parse(r.body) : json::object();
  }
  static bool phaseIs(int admin, const std::string& phase, const std::string& service = "vehicles") {
    return status(admin, service).value("phase", "") == phase;
  }
  static int startV2(int admin, const std::string& service = "vehicles") {
    return testing::httpPost(admin, "/api/v1/rollouts/" + service + "/start", R"({"release":"v2"})", kOperator).status;
  }
  // Starts the controller on `yaml` under client load, starts v2 and waits for the rollback.
  struct RolledBack {
    std::unique_ptr<app::Service> ctl;
    int admin = 0;
    std::string reason;
    int failed = -1, v2 = -1;  // client requests that failed, and that v2 answered
  };
  RolledBack rollOutExpectingRollback(const std::string& yaml, int threads) {
    RolledBack r;
    r.ctl = startController(yaml);
    if (!r.ctl) return r;
    r.admin = r.ctl->adminPort();
    Load load(proxy_port_, threads);
    EXPECT_EQ(startV2(r.admin), 200);
    EXPECT_TRUE(testing::waitUntil([&] { return phaseIs(r.admin, "rolled-back"); }, 30s)) << status(r.admin).dump(2);
    r.reason = status(r.admin).value("reason", "");
    load.stop();
    r.failed = load.failed;
    r.v2 = load.v2();
    return r;
  }
  static void replace(std::string& text, const std::string& what, const std::string& with) {
    const size_t at = text.find(what);
    ASSERT_NE(at, std::string::npos) << what;
    text.replace(at, what.size(), with);
  }

  testing::TempDir dir_;
  TestBackend v1_{"v1"};
  TestBackend v2_{"v2"};
  testing::RecordingReceiver receiver_;
  std::string socket_;
  std::unique_ptr<app::ProxyService> proxy_;
  int proxy_port_ = 0;
};

TEST_F(RolloutE2E, GoodReleaseIsPromotedInStepsWithoutAFailedRequest) {
  startProxy();
  auto ctl = startController(config(builtin(), proxy_port_));
  ASSERT_TRUE(ctl);
  const int admin = ctl->adminPort();
  Load load(proxy_port_, 4);
  ASSERT_EQ(startV2(admin), 200);
  ASSERT_TRUE(testing::waitUntil([&] { return phaseIs(admin, "promoted"); }, 30s)) << status(admin).dump(2);
  const int before = load.ok;
  ASSERT_TRUE(testing::waitUntil([&] { return load.ok > before + 200; }));
  load.stop();
  EXPECT_EQ(load.failed, 0);
  EXPECT_GT(load.v2(), 0);
  const json s = status(admin);
  EXPECT_EQ(s["stable_release"], "v2");
  EXPECT_EQ(s["stable"], "green");
  EXPECT_EQ(s["weights"]["green"], 100);
  EXPECT_NE(proxy_->store().current()->services.at("vehicles").weight[1], 0);
  EXPECT_EQ(proxy_->store().current()->services.at("vehicles").weight[1], 100);
  // Every step on the record, in the hash-chained audit log.
  const auto v = verifyAuditLog(dir_.path() + "/controller/audit.log");
  EXPECT_TRUE(v.ok) << v.why;
  const std::string audit = testing::readFile(dir_.path() + "/controller/audit.log");
  for (const char* w : {"green 0% -> 25%", "green 25% -> 50%", "green 50% -> 100%", "\"action\":\"promoted\"",
                        "\"actor\":\"alice\""}) {
    EXPECT_NE(audit.find(w), std::string::npos) << w << "\n" << audit;
  }
  // Each traffic change records the weights before and after it, under the hash chain.
  std::vector<std::pair<json, json>> changes;
  std::istringstream lines(audit);
  for (std::string line; std::getline(lines, line);) {
    const json j = json::parse(line);
    if (j["action"] == "set_weights") changes.emplace_back(j["weights_before"], j["weights_after"]);
  }
  ASSERT_GE(changes.size(), 4u);
  EXPECT_EQ(changes.back().first, (json{{"blue", 50}, {"green", 50}}));
  EXPECT_EQ(changes.back().second, (json{{"blue", 0}, {"green", 100}}));
  for (size_t i = 1; i < changes.size(); ++i) EXPECT_EQ(changes[i].first, changes[i - 1].second) << "a change went unrecorded";
  // The same history through the API, oldest first.
  const json history = json::parse(testing::httpGet(admin, "/api/v1/rollouts/vehicles/history", kOperator).body);
  ASSERT_GE(history.size(), 5u);
  EXPECT_EQ(history[0]["action"], "set_weights");
  EXPECT_EQ(history[1]["action"], "start");
  EXPECT_EQ(history[1]["actor"], "alice");
  EXPECT_EQ(history.back()["action"], "promoted");
}

TEST_F(RolloutE2E, FailingReleaseIsRolledBackAutomaticallyAndAlerts) {
  startProxy();
  v2_.failEvery(5);  // 20% 500s
  auto ctl = startController(config(builtin(), proxy_port_));
  ASSERT_TRUE(ctl);
  const int admin = ctl->adminPort();
  Load load(proxy_port_, 4);
  ASSERT_EQ(startV2(admin), 200);
  ASSERT_TRUE(testing::waitUntil([&] { return phaseIs(admin, "rolled-back"); }, 30s)) << status(admin).dump(2);
  // From here on every request is answered by v1.
  const int failed_at_rollback = load.failed, v2_at_rollback = load.v2(), ok_at_rollback = load.ok;
  ASSERT_TRUE(testing::waitUntil([&] { return load.ok > ok_at_rollback + 300; }));
  load.stop();
  EXPECT_EQ(load.failed, failed_at_rollback) << "a request failed after the rollback";
  EXPECT_EQ(load.v2(), v2_at_rollback) << "v2 still served after the rollback";
  const json s = status(admin);
  EXPECT_EQ(s["stable_release"], "v1");
  EXPECT_NE(s["reason"].get<std::string>().find("analysis failed"), std::string::npos) << s.dump(2);
  EXPECT_EQ(proxy_->store().current()->services.at("vehicles").weight[0], 100);
  ASSERT_TRUE(testing::waitUntil([&] { return receiver_.count() >= 1; }));
  const json alert = json::parse(receiver_.requests()[0].body);
  EXPECT_EQ(alert["alerts"][0]["labels"]["alertname"], "RolloutRolledBack");
  EXPECT_EQ(alert["alerts"][0]["labels"]["service"], "vehicles");
  EXPECT_EQ(alert["alerts"][0]["labels"]["release"], "v2");
  const std::string metrics = testing::httpGet(admin, "/metrics", kOperator).body;
  EXPECT_NE(metrics.find("greenlight_rollout_rollbacks_total{service=\"vehicles\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("greenlight_rollout_rollback_seconds_count{service=\"vehicles\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("greenlight_rollout_phase{phase=\"rolled-back\",service=\"vehicles\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("greenlight_rollout_analysis_total{service=\"vehicles\",verdict=\"fail\"} 1"), std::string::npos);
}

TEST_F(RolloutE2E, MirroredCopiesCatchABrokenReleaseBeforeAnyClientReachesIt) {
  startProxy();
  v2_.failEvery(5, true);  // 20% 500s on "/", the clients' path; /health (ready, preview) is fine
  std::string yaml = config(builtin(), proxy_port_);
  replace(yaml, "progress_deadline: 30s}", "progress_deadline: 30s, mirror: {percent: 50}}");
  const RolledBack r = rollOutExpectingRollback(yaml, 4);
  ASSERT_TRUE(r.ctl);
  EXPECT_NE(r.reason.find("analysis failed at pre-promotion (mirrored 50%): mirrored copies: 5xx"), std::string::npos)
      << r.reason;
  EXPECT_EQ(r.failed, 0);
  EXPECT_EQ(r.v2, 0) << "no client ever got an answer from v2";
  EXPECT_GT(v2_.requests(), 10) << "but v2 did see copies of their requests";
  const auto& routes = proxy_->store().current()->services.at("vehicles");
  EXPECT_EQ(routes.mirror, 0) << "mirroring is off again after the rollback";
  EXPECT_EQ(routes.weight[0], 100);
  const std::string audit = testing::httpGet(r.admin, "/api/v1/rollouts/vehicles/history", kOperator).body;
  EXPECT_NE(audit.find("50% of the requests copied to green"), std::string::npos) << audit;
  EXPECT_NE(audit.find("0% of the requests copied to green"), std::string::npos) << audit;
}

TEST_F(RolloutE2E, AGoodReleaseAnalysedOnMirroredCopiesIsThenShiftedAndPromoted) {
  startProxy();
  std::string yaml = config(builtin(), proxy_port_);
  replace(yaml, "progress_deadline: 30s}", "progress_deadline: 30s, mirror: {percent: 50}}");
  auto ctl = startController(yaml);
  ASSERT_TRUE(ctl);
  const int admin = ctl->adminPort();
  Load load(proxy_port_, 4);
  ASSERT_EQ(startV2(admin), 200);
  ASSERT_TRUE(testing::waitUntil([&] { return phaseIs(admin, "promoted"); }, 30s)) << status(admin).dump(2);
  load.stop();
  EXPECT_EQ(load.failed, 0);
  const json s = status(admin);
  bool mirrored_pass = false;
  for (const auto& line : s["results"]) mirrored_pass |= line.get<std::string>().find("(mirrored 50%): pass") != std::string::npos;
  EXPECT_TRUE(mirrored_pass) << s.dump(2);
  EXPECT_EQ(proxy_->store().current()->services.at("vehicles").mirror, 0);
}

TEST_F(RolloutE2E, DeployAndStopCommandsRunWithTheReleaseAndColour) {
  startProxy();
  const std::string log = dir_.path() + "/deploys.txt";
  std::string yaml = config(builtin(), proxy_port_);
  yaml.replace(yaml.find("      ready:"), 0,
               "      deploy:\n        start: 'echo start {release} {color} {port} $GREENLIGHT_RELEASE >> " + log + "'\n"
               "        stop: 'echo stop {release} {color} >> " + log + "'\n");
  yaml.replace(yaml.find("progress_deadline: 30s"), 0, "scale_down_delay: 0s, ");
  auto ctl = startController(yaml);
  ASSERT_TRUE(ctl);
  const int admin = ctl->adminPort();
  Load load(proxy_port_, 2);
  ASSERT_EQ(startV2(admin), 200);
  ASSERT_TRUE(testing::waitUntil([&] { return testing::readFile(log).find("stop v1 blue") != std::string::npos; }, 30s))
      << testing::readFile(log) << status(admin).dump(2);
  EXPECT_NE(testing::readFile(log).find("start v2 green " + std::to_string(v2_.port()) + " v2"), std::string::npos)
      << testing::readFile(log);
  load.stop();
  EXPECT_EQ(load.failed, 0);
}

TEST_F(RolloutE2E, FailingDeployCommandRollsBackBeforeAnyTraffic) {
  startProxy();
  std::string yaml = config(builtin(), proxy_port_);
  yaml.replace(yaml.find("      ready:"), 0, "      deploy: {start: 'echo no such image >&2; exit 3'}\n");
  auto ctl = startController(yaml);
  ASSERT_TRUE(ctl);
  const int admin = ctl->adminPort();
  ASSERT_EQ(startV2(admin), 200);
  ASSERT_TRUE(testing::waitUntil([&] { return phaseIs(admin, "rolled-back"); }, 20s)) << status(admin).dump(2);
  EXPECT_NE(status(admin)["reason"].get<std::string>().find("deploy failed: start command exit 3"), std::string::npos);
  EXPECT_EQ(v2_.requests(), 0);
}

TEST_F(RolloutE2E, PrometheusQueriesGateEachStep) {
  startProxy();
  const int prom = testing::freePort();
  const std::string prom_cfg = dir_.write("prometheus.yml", "global: {scrape_interval: 1s}\n");
  testing::ChildProcess prometheus({"prometheus", "--config.file=" + prom_cfg, "--storage.tsdb.path=" + dir_.path() + "/tsdb",
                                    "--web.listen-address=127.0.0.1:" + std::to_string(prom)},
                                   dir_.path() + "/prometheus.log");
  ASSERT_TRUE(testing::waitUntil([&] { return testing::httpGet(prom, "/-/ready").status == 200; }, 30s))
      << testing::readFile(dir_.path() + "/prometheus.log");
  // A query that names the colour and service it judges, and fails its condition.
  std::string yaml = config(builtin(), proxy_port_);
  yaml.replace(yaml.find("min_requests: 10}"), std::string("min_requests: 10}").size(),
               "min_requests: 10,\n                 prometheus: {url: 'http://127.0.0.1:" + std::to_string(prom) + "', queries: [\n"
               "                   {name: budget, query: 'label_replace(vector(0.5), \"c\", \"{color}-{service}\", \"\", \"\")',"
               " success: '< 0.1'}]}}");
  const RolledBack r = rollOutExpectingRollback(yaml, 2);
  EXPECT_NE(r.reason.find("budget 0.5 (want < 0.1)"), std::string::npos) << r.reason;
  EXPECT_EQ(r.failed, 0);
}

TEST_F(RolloutE2E, WebhookGatesHoldConfirmAndAreToldTheOutcome) {
  startProxy();
  testing::RecordingReceiver gate;
  gate.script({{200, "go", {}}, {409, "change freeze until 10:00", {}}, {409, "still frozen", {}}});  // then 200s
  std::string yaml = config(builtin(), proxy_port_);
  yaml.replace(yaml.find("      ready:"), 0,
               "      gates:\n"
               "        pre-rollout: {url: '" + gate.url("/pre") + "', timeout: 2s}\n"
               "        confirm-promotion: {url: '" + gate.url("/confirm") + "', timeout: 2s, on_timeout: wait}\n"
               "        post-rollout: {url: '" + gate.url("/post") + "'}\n");
  auto ctl = startController(yaml);
  ASSERT_TRUE(ctl);
  const int admin = ctl->adminPort();
  Load load(proxy_port_, 2);
  ASSERT_EQ(startV2(admin), 200);
  ASSERT_TRUE(testing::waitUntil([&] { return phaseIs(admin, "promoted"); }, 30s)) << status(admin).dump(2);
  ASSERT_TRUE(testing::waitUntil([&] { return gate.count() >= 5; }));
  const auto r = gate.requests();
  EXPECT_EQ(r[0].path, "/pre");
  EXPECT_EQ(r[1].path, "/confirm");  // 409: not yet
  EXPECT_EQ(r[2].path, "/confirm");  // 409: not yet
  EXPECT_EQ(r[3].path, "/confirm");  // 200: go
  EXPECT_EQ(r.back().path, "/post");
  const json pre = json::parse(r[0].body);
  EXPECT_EQ(pre["service"], "vehicles");
  EXPECT_EQ(pre["release"], "v2");
  EXPECT_EQ(pre["color"], "green");
  EXPECT_EQ(pre["gate"], "pre-rollout");
  EXPECT_EQ(json::parse(r.back().body)["phase"], "promoted");
  load.stop();
  EXPECT_EQ(load.failed, 0);
}

TEST_F(RolloutE2E, RollbackGateAbortsARollout) {
  startProxy();
  testing::RecordingReceiver gate;
  gate.script({{404, "", {}}, {200, "incident INC-42 open", {}}});
  std::string yaml = config(builtin(), proxy_port_);
  yaml.replace(yaml.find("      ready:"), 0, "      gates: {rollback: {url: '" + gate.url("/rollback") + "', timeout: 1s}}\n");
  auto ctl = startController(yaml);
  ASSERT_TRUE(ctl);
  const int admin = ctl->adminPort();
  Load load(proxy_port_, 2);
  ASSERT_EQ(startV2(admin), 200);
  ASSERT_TRUE(testing::waitUntil([&] { return phaseIs(admin, "rolled-back"); }, 30s)) << status(admin).dump(2);
  EXPECT_NE(status(admin)["reason"].get<std::string>().find("aborted by rollback gate"), std::string::npos);
  load.stop();
  EXPECT_EQ(load.failed, 0);
}

TEST_F(RolloutE2E, SlowReleaseIsRolledBackOnTheProxysLatencyQuantile) {
  startProxy();
  v2_.slowBy(150ms);
  std::string yaml = config(builtin(), proxy_port_);
  replace(yaml, "interval: 300ms", "interval: 1s");
  replace(yaml, "min_requests: 10}", "min_requests: 5, max_latency: 50ms, latency_quantile: 0.9}");
  // Judged from the proxy's own upstream histogram: no Prometheus in this test.
  const RolledBack r = rollOutExpectingRollback(yaml, 4);
  EXPECT_NE(r.reason.find("p90 latency"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("(limit 50 ms)"), std::string::npos) << r.reason;
  EXPECT_EQ(r.failed, 0);
}

TEST_F(RolloutE2E, ProbesThroughPreviewRoutingJudgeTheNewColourOnly) {
  startProxy();
  // The platform's own probe of the service: right status and the expected answer. Run by the
  // controller through preview routing, it sees v2 before any client does.
  const std::string probe = "probes:\n  - name: vehicles-answer\n    url: http://127.0.0.1:" + std::to_string(proxy_port_) +
                            "/\n    interval: 1h\n    conditions: ['[STATUS] == 200', '[BODY] == v1']\n";
  std::string yaml = probe + config(builtin(), proxy_port_);
  replace(yaml, "min_requests: 10}", "min_requests: 10, probes: [vehicles-answer]}");
  const RolledBack r = rollOutExpectingRollback(yaml, 2);
  EXPECT_NE(r.reason.find("probe vehicles-answer failed"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("v2"), std::string::npos) << "the actual value is named: " << r.reason;
  EXPECT_EQ(r.failed, 0);
  EXPECT_EQ(r.v2, 0) << "stopped at pre-promotion: no client request reached v2";
  const int admin = r.admin;
  // The scheduled probe (hourly, not yet run) is untouched by the failed one-off runs: they
  // judge the new colour, not the service's health.
  const json probes = json::parse(testing::httpGet(admin, "/api/v1/probes", kOperator).body);
  ASSERT_EQ(probes.size(), 1u);
  EXPECT_EQ(probes[0]["health"], "unknown") << probes.dump(2);
  EXPECT_EQ(probes[0]["consecutive_failures"], 0) << probes.dump(2);
}

TEST_F(RolloutE2E, OneControllerRollsOutTwoServicesIndependently) {
  // A second service, "checkout", whose v2 fails 20% of its requests.
  TestBackend c1{"v1"}, c2{"v2"};
  c2.failEvery(5);
  socket_ = dir_.path() + "/proxy.sock";
  auto proxy_service = [](const std::string& name, const TestBackend& b, const TestBackend& g) {
    return "    - name: " + name + "\n      listen: 127.0.0.1:0\n      blue: [" + b.address() + "]\n      green: [" +
           g.address() + "]\n      weights: {blue: 100, green: 0}\n      preview: {header: X-Greenlight-Color}\n";
  };
  const std::string pcfg = dir_.write("proxy.yaml",
      "log: {level: warn}\nadmin: {listen: 127.0.0.1:0}\nproxy:\n  state_file: " + dir_.path() + "/routes.json\n"
      "  runtime_api: {socket: " + socket_ + "}\n  threads: 2\n  services:\n" +
      proxy_service("vehicles", v1_, v2_) + proxy_service("checkout", c1, c2));
  auto p = app::ProxyService::start(pcfg, 0);
  ASSERT_TRUE(p.ok()) << p.status().message();
  proxy_ = std::move(p.value());
  const int vehicles = proxy_->port("vehicles"), checkout = proxy_->port("checkout");
  auto ctl = startController(header() + service("vehicles", builtin(), v1_, v2_, vehicles) +
                             service("checkout", "{builtin: {socket: " + socket_ + ", service: checkout}}", c1, c2, checkout));
  ASSERT_TRUE(ctl);
  const int admin = ctl->adminPort();
  Load vload(vehicles, 2), cload(checkout, 2);
  ASSERT_EQ(startV2(admin, "vehicles"), 200);
  ASSERT_EQ(startV2(admin, "checkout"), 200);
  ASSERT_TRUE(testing::waitUntil([&] { return phaseIs(admin, "rolled-back", "checkout"); }, 30s)) << status(admin, "checkout").dump(2);
  const int checkout_v2 = cload.v2(), checkout_failed = cload.failed;
  ASSERT_TRUE(testing::waitUntil([&] { return phaseIs(admin, "promoted", "vehicles"); }, 30s)) << status(admin).dump(2);
  const int ok = cload.ok;
  ASSERT_TRUE(testing::waitUntil([&] { return cload.ok > ok + 100; }));
  vload.stop();
  cload.stop();
  EXPECT_EQ(vload.failed, 0);
  EXPECT_EQ(cload.failed, checkout_failed) << "a checkout request failed after its rollback";
  EXPECT_EQ(cload.v2(), checkout_v2);
  EXPECT_EQ(status(admin, "vehicles")["stable_release"], "v2");
  EXPECT_EQ(status(admin, "checkout")["stable_release"], "v1");
  const auto routes = proxy_->store().current();
  EXPECT_EQ(routes->services.at("vehicles").weight[1], 100);
  EXPECT_EQ(routes->services.at("checkout").weight[0], 100);
  const std::string metrics = testing::httpGet(admin, "/metrics", kOperator).body;
  EXPECT_NE(metrics.find("greenlight_rollout_phase{phase=\"promoted\",service=\"vehicles\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("greenlight_rollout_phase{phase=\"rolled-back\",service=\"checkout\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("greenlight_rollout_rollbacks_total{service=\"vehicles\"} 0"), std::string::npos);
  // The alert names the service that rolled back, and only that one.
  ASSERT_TRUE(testing::waitUntil([&] { return receiver_.count() >= 1; }));
  EXPECT_NE(receiver_.requests()[0].body.find("\"service\":\"checkout\""), std::string::npos);
  EXPECT_EQ(receiver_.requests()[0].body.find("\"service\":\"vehicles\""), std::string::npos);
}

TEST_F(RolloutE2E, ReloadAddsAndChangesServicesButNeverPullsOneMidRollout) {
  startProxy();
  std::string yaml = config(builtin(), proxy_port_);
  replace(yaml, "preview_requests: 3,", "preview_requests: 3, auto_promote: false,");
  auto ctl = startController(yaml);
  ASSERT_TRUE(ctl);
  const int admin = ctl->adminPort();
  auto reload = [&](const std::string& text) {
    dir_.write("g.yaml", text);
    return testing::httpPost(admin, "/-/reload", "", kAdmin);
  };
  ASSERT_EQ(startV2(admin), 200);
  ASSERT_TRUE(testing::waitUntil([&] { return status(admin).value("awaiting_promotion", false); }, 20s)) << status(admin).dump(2);
  // Taking the service away (or moving its instances) mid-rollout is refused, and nothing changes.
  TestBackend c1{"v1"}, c2{"v2"};
  const std::string checkout =
      service("checkout", "{builtin: {socket: " + socket_ + ", service: checkout}}", c1, c2, proxy_port_);
  auto refused = reload(header() + checkout);
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("vehicles: cannot be removed while its rollout is pre-promotion"), std::string::npos) << refused.body;
  std::string moved = yaml;
  replace(moved, "green: [" + v2_.address() + "]", "green: [127.0.0.1:1]");
  refused = reload(moved);
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("router and instances cannot change"), std::string::npos) << refused.body;
  EXPECT_EQ(testing::httpGet(admin, "/api/v1/rollouts/checkout", kOperator).status, 404);
  EXPECT_EQ(status(admin)["phase"], "pre-promotion");
  // A new service and a new strategy for the running rollout: both take effect.
  std::string changed = yaml;
  replace(changed, "steps: [25, 50, 100]", "steps: [60, 100]");
  ASSERT_EQ(reload(changed + checkout).status, 200);
  EXPECT_EQ(testing::httpGet(admin, "/api/v1/rollouts/checkout", kOperator).status, 200);
  EXPECT_EQ(status(admin, "checkout")["phase"], "idle");
  ASSERT_EQ(testing::httpPost(admin, "/api/v1/rollouts/vehicles/promote", "{}", kOperator).status, 200);
  ASSERT_TRUE(testing::waitUntil([&] { return status(admin)["weight"] == 60; }, 10s)) << status(admin).dump(2);
  EXPECT_EQ(proxy_->store().current()->services.at("vehicles").weight[1], 60);
  // An idle service may go; its series leave /metrics with it.
  ASSERT_EQ(reload(changed).status, 200);
  EXPECT_EQ(testing::httpGet(admin, "/api/v1/rollouts/checkout", kOperator).status, 404);
  const std::string metrics = testing::httpGet(admin, "/metrics", kOperator).body;
  EXPECT_EQ(metrics.find("service=\"checkout\""), std::string::npos);
  EXPECT_NE(metrics.find("greenlight_rollout_weight{color=\"green\",service=\"vehicles\"} 60"), std::string::npos);
}

TEST_F(RolloutE2E, AbortIsImmediateAndRefusedTwice) {
  startProxy();
  auto ctl = startController(config(builtin(), proxy_port_));
  ASSERT_TRUE(ctl);
  const int admin = ctl->adminPort();
  Load load(proxy_port_, 2);
  ASSERT_EQ(startV2(admin), 200);
  ASSERT_TRUE(testing::waitUntil([&] { return status(admin).value("weight", 0) >= 25; }, 20s));
  auto r = testing::httpPost(admin, "/api/v1/rollouts/vehicles/abort", R"({"reason":"customer reports"})", kOperator);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["phase"], "rolled-back");  // one router change, confirmed
  EXPECT_EQ(proxy_->store().current()->services.at("vehicles").weight[1], 0);
  EXPECT_EQ(testing::httpPost(admin, "/api/v1/rollouts/vehicles/abort", "", kOperator).status, 409);
  EXPECT_EQ(testing::httpPost(admin, "/api/v1/rollouts/nope/abort", "", kOperator).status, 404);
  EXPECT_EQ(testing::httpPost(admin, "/api/v1/rollouts/vehicles/start", R"({"release":"../x"})", kOperator).status, 400);
  load.stop();
  EXPECT_EQ(load.failed, 0);
}

TEST_F(RolloutE2E, ControllerKilledMidShiftResumesWithoutAFailedRequest) {
  startProxy();
  const int admin = testing::freePort();
  const std::string path = dir_.write("g.yaml", config(builtin(), proxy_port_, admin));
  Load load(proxy_port_, 4);
  {
    testing::ChildProcess first({GREENLIGHT_BINARY, "run", "--config", path}, dir_.path() + "/first.log");
    ASSERT_TRUE(testing::waitUntil([&] { return testing::httpGet(admin, "/readyz").status == 200; }));
    ASSERT_EQ(startV2(admin), 200);
    ASSERT_TRUE(testing::waitUntil([&] { return status(admin).value("weight", 0) == 50; }, 20s))
        << testing::readFile(dir_.path() + "/first.log");
    first.signal(SIGKILL);
    first.wait(5s);
  }
  const int served_while_down = load.ok;
  ASSERT_TRUE(testing::waitUntil([&] { return load.ok > served_while_down + 100; }));  // the proxy keeps serving
  testing::ChildProcess second({GREENLIGHT_BINARY, "run", "--config", path}, dir_.path() + "/second.log");
  ASSERT_TRUE(testing::waitUntil([&] { return phaseIs(admin, "promoted"); }, 30s)) << testing::readFile(dir_.path() + "/second.log");
  load.stop();
  EXPECT_EQ(load.failed, 0);
  EXPECT_NE(testing::readFile(dir_.path() + "/second.log").find("resumed in shifting"), std::string::npos);
}

TEST_F(RolloutE2E, SameRolloutThroughARealHaproxy) {
  const int port = testing::freePort();
  const std::string sock = dir_.path() + "/haproxy.sock";
  const std::string cfg = dir_.write("haproxy.cfg",
      "global\n  stats socket " + sock + " mode 600 level admin\n"
      "defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n"
      "frontend fe\n  bind 127.0.0.1:" + std::to_string(port) + "\n  default_backend be\n"
      "backend be\n  balance roundrobin\n  http-reuse always\n"
      "  use-server green if { req.hdr(X-Greenlight-Color) -m str green }\n"
      "  use-server blue if { req.hdr(X-Greenlight-Color) -m str blue }\n"
      "  server blue " + v1_.address() + " weight 100\n  server green " + v2_.address() + " weight 0\n");
  testing::ChildProcess haproxy({"haproxy", "-f", cfg, "-db"}, dir_.path() + "/haproxy.log");
  ASSERT_TRUE(testing::waitUntil([&] { return testing::httpGet(port, "/").status == 200; }))
      << testing::readFile(dir_.path() + "/haproxy.log");
  auto ctl = startController(config("{haproxy: {socket: " + sock + ", backend: be, blue: [blue], green: [green]}}", port));
  ASSERT_TRUE(ctl);
  const int admin = ctl->adminPort();
  Load load(port, 4);
  ASSERT_EQ(startV2(admin), 200);
  ASSERT_TRUE(testing::waitUntil([&] { return phaseIs(admin, "promoted"); }, 30s)) << status(admin).dump(2);
  const int before = load.ok;
  ASSERT_TRUE(testing::waitUntil([&] { return load.ok > before + 200; }));
  const int v2_before = load.v2();
  ASSERT_TRUE(testing::waitUntil([&] { return load.ok > before + 400; }));
  load.stop();
  EXPECT_EQ(load.failed, 0);
  EXPECT_GT(load.v2(), v2_before);
  auto state = runtimeCommand(sock, "show servers state be", 2s);
  ASSERT_TRUE(state.ok());
  EXPECT_NE(state.value().find("blue"), std::string::npos);
  haproxy.signal(SIGTERM);
}

}  // namespace
}  // namespace greenlight::controller
