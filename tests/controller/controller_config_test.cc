#include "greenlight/controller/controller_config.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace greenlight::controller {
namespace {

using namespace std::chrono_literals;

std::optional<ControllerConfig> parse(const std::string& yaml, std::string* errors) {
  ConfigErrors errs;
  ConfigReader r("g.yaml", errs, testing::fakeEnv({}));
  auto root = r.loadString(yaml);
  if (!root) {
    *errors = errs.format();
    return std::nullopt;
  }
  auto c = parseControllerConfig(r, (*root)["rollouts"], "rollouts");
  *errors = errs.format();
  if (!errs.empty()) return std::nullopt;
  return c;
}

TEST(ControllerConfigTest, ReadsServicesWithBothRouters) {
  std::string errors;
  auto c = parse(R"(
rollouts:
  state_dir: /var/lib/greenlight
  services:
    - name: vehicles
      release: v1
      router: {builtin: {socket: /run/greenlight/proxy.sock}}
      blue: [10.0.0.1:8080]
      green: [10.0.0.2:8080]
      preview: {url: 'http://127.0.0.1:8080/health'}
      strategy: {steps: [10, {weight: 50, bake: 5m, pause: true}, 100], bake: 30s, auto_promote: false, mirror: {percent: 25}}
      analysis:
        interval: 10s
        count: 3
        max_error_ratio: 0.01
        min_requests: 50
        no_data: fail
        max_latency: 300ms
        latency_quantile: 0.95
        probes: [vehicles-api]
        prometheus:
          url: http://prometheus:9090/
          queries:
            - {name: p99, query: 'histogram_quantile(0.99, rate(x{color="{color}"}[1m]))', success: '<= 0.5', no_data: pass}
    - name: oem-gateway
      stable: green
      router: {haproxy: {address: '127.0.0.1:9999', backend: gw, blue: [b1, b2], green: [g1, g2]}}
)", &errors);
  ASSERT_TRUE(c) << errors;
  EXPECT_EQ(c->audit_log, "/var/lib/greenlight/audit.log");
  ASSERT_EQ(c->services.size(), 2u);
  EXPECT_EQ(c->services[0].builtin.service, "vehicles");  // defaults to the service name
  EXPECT_EQ(c->services[0].rollout.strategy.steps, (std::vector<int>{10, 50, 100}));
  EXPECT_FALSE(c->services[0].rollout.strategy.auto_promote);
  EXPECT_EQ(c->services[0].rollout.strategy.bakeOf(0), 30s);
  EXPECT_EQ(c->services[0].rollout.strategy.bakeOf(1), 5min);
  EXPECT_TRUE(c->services[0].rollout.strategy.pauseAfter(1));
  EXPECT_FALSE(c->services[0].rollout.strategy.pauseAfter(2));
  EXPECT_EQ(c->services[0].rollout.analysis.no_data, NoDataPolicy::kFail);
  EXPECT_EQ(c->services[0].rollout.analysis.max_latency, 300ms);
  EXPECT_EQ(c->services[0].rollout.strategy.mirror, 25);
  EXPECT_EQ(c->services[1].rollout.strategy.mirror, 0);
  EXPECT_DOUBLE_EQ(c->services[0].rollout.analysis.latency_quantile, 0.95);
  EXPECT_EQ(c->services[0].analysis_probes, (std::vector<std::string>{"vehicles-api"}));
  EXPECT_EQ(c->services[0].prometheus_url, "http://prometheus:9090");
  ASSERT_EQ(c->services[0].prometheus_checks.size(), 1u);
  EXPECT_EQ(c->services[0].prometheus_checks[0].op, "<=");
  EXPECT_DOUBLE_EQ(c->services[0].prometheus_checks[0].threshold, 0.5);
  EXPECT_EQ(c->services[0].prometheus_checks[0].no_data, NoDataPolicy::kPass);
  EXPECT_EQ(c->services[1].router, RouterKind::kHaproxy);
  EXPECT_EQ(c->services[1].initial_stable, Color::kGreen);
  EXPECT_EQ(c->services[1].haproxy.servers.at("green"), (std::vector<std::string>{"g1", "g2"}));
  EXPECT_EQ(c->services[1].rollout.strategy.preview_requests, 0) << "no preview url: nothing to preview";
}

TEST(ControllerConfigTest, ErrorsSayWhereAndWhat) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"rollouts: {services: [{name: a, router: {builtin: {socket: /s}}, strategy: {steps: [50, 10, 100]}}]}",
       "rollouts.services[0].strategy.steps[1]: expected increasing weights"},
      {"rollouts: {services: [{name: a, router: {builtin: {socket: /s}}, strategy: {steps: [10, 50]}}]}",
       "rollouts.services[0].strategy.steps: the last step must be 100"},
      {"rollouts: {services: [{name: a}]}", "rollouts.services[0].router: required"},
      {"rollouts: {services: [{name: a, router: {builtin: {socket: /s}}, strategy: {steps: [10, {weight: 50, pase: true}, 100]}}]}",
       "rollouts.services[0].strategy.steps[1].pase: unknown key"},
      {"rollouts: {services: [{name: a, router: {builtin: {socket: /s}, haproxy: {}}}]}", "exactly one of builtin, haproxy"},
      {"rollouts: {services: [{name: a, router: {builtin: {socket: /s}}, blue: [nowhere]}]}",
       "rollouts.services[0].blue[0]: expected host:port"},
      {"rollouts: {services: [{name: a, router: {builtin: {socket: /s}}, analysis: {no_data: maybe}}]}",
       "expected fail, pass or inconclusive"},
      {"rollouts: {services: [{name: a, router: {builtin: {socket: /s}}, analysis: {prometheus: {url: 'http://p', queries: [{name: q, query: up, success: about 1}]}}}]}",
       "analysis.prometheus.queries[0].success: expected a comparison with a number"},
      {"rollouts: {services: [{name: a, router: {builtin: {socket: /s}}, stratgy: {}}]}",
       "rollouts.services[0].stratgy: unknown key"},
      {"rollouts: {services: [{name: a, router: {builtin: {socket: /s}}}, {name: a, router: {builtin: {socket: /s}}}]}",
       "another service is named \"a\""},
      {"rollouts: {services: [{name: a, router: {haproxy: {address: '127.0.0.1:1', backend: b, blue: [b], green: [g]}}, "
       "analysis: {max_latency: 200ms}}]}",
       "rollouts.services[0].analysis.max_latency: needs router builtin"},
      {"rollouts: {services: [{name: a, router: {haproxy: {address: '127.0.0.1:1', backend: b, blue: [b], green: [g]}}, "
       "strategy: {mirror: {percent: 10}}}]}",
       "rollouts.services[0].strategy.mirror: needs router builtin"},
      {"rollouts: {services: [{name: a, router: {builtin: {socket: /s}}, strategy: {mirror: {percent: 0}}}]}",
       "rollouts.services[0].strategy.mirror.percent: expected a whole number from 1 to 100"},
      {"rollouts: {services: [{name: a, router: {builtin: {socket: /s}}, strategy: {mirror: 10}}]}",
       "rollouts.services[0].strategy.mirror: expected a mapping"},
      {"rollouts: {services: [{name: a, router: {builtin: {socket: /s}}, analysis: {latency_quantile: 99}}]}",
       "rollouts.services[0].analysis.latency_quantile"},
  };
  for (const auto& [yaml, want] : cases) {
    std::string errors;
    EXPECT_FALSE(parse(yaml, &errors)) << yaml;
    EXPECT_NE(errors.find(want), std::string::npos) << "want: " << want << "\ngot: " << errors;
    EXPECT_NE(errors.find("g.yaml:1:"), std::string::npos) << errors;
  }
}

}  // namespace
}  // namespace greenlight::controller
