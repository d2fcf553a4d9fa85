#include "greenlight/alerts/alert_config.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace greenlight::alerts {
namespace {

using namespace std::chrono_literals;

std::optional<AlertingConfig> parse(const std::string& yaml, std::string* errors) {
  ConfigErrors errs;
  ConfigReader r("a.yaml", errs, testing::fakeEnv({{"PD_KEY", "0123456789abcdef0123456789abcdef"}}));
  auto root = r.loadString(yaml);
  if (!root) {
    *errors = errs.format();
    return std::nullopt;
  }
  AlertingConfig c = parseAlertingConfig(r, (*root)["alerting"], "alerting");
  *errors = errs.format();
  if (!errs.empty()) return std::nullopt;
  return c;
}

TEST(AlertConfigTest, ReadsEveryRuleKindRoutesAndReceivers) {
  std::string errors;
  auto c = parse(R"(
alerting:
  external_url: https://gl.example/
  state_dir: /var/lib/greenlight
  rules:
    - {alert: ProbeFailing, kind: probe_health, matchers: ['oem=~bmw|ford'], for: 30s, labels: {severity: page},
       annotations: {summary: '{{ $labels.probe }} failing'}}
    - {alert: OemErrors, kind: failure_ratio, by: [oem], window: 5m, threshold: 0.2, min_samples: 10, no_data: alert}
    - {alert: Slow, kind: latency, quantile: 0.95, window: 10m, threshold: 800ms}
    - {alert: Burn, kind: burn_rate, objective: 99.9, by: [oem]}
    - {alert: RolledBack, kind: event, event: rollout_rolled_back}
  route:
    receiver: hook
    group_by: [alertname, oem]
    routes:
      - {matchers: [severity=page], receiver: pager, continue: true, group_wait: 0s}
  inhibit_rules:
    - {source_matchers: [alertname=OemDown], target_matchers: [alertname=ProbeFailing], equal: [oem]}
  receivers:
    - {name: hook, webhook: {url: 'https://hooks.example/x', headers: {Authorization: 'Bearer t'}}}
    - {name: pager, pagerduty: {routing_key: '${PD_KEY}'}}
    - {name: am, alertmanager: {url: 'http://127.0.0.1:9093', resend_interval: 30s}}
)", &errors);
  ASSERT_TRUE(c) << errors;
  EXPECT_TRUE(c->enabled);
  EXPECT_EQ(c->external_url, "https://gl.example");
  ASSERT_EQ(c->rules.size(), 5u);
  EXPECT_EQ(c->rules[0].for_duration, 30s);
  EXPECT_EQ(c->rules[1].no_data, NoDataPolicy::kAlert);
  EXPECT_DOUBLE_EQ(c->rules[2].threshold, 0.8);
  EXPECT_DOUBLE_EQ(c->rules[3].objective, 0.999);
  EXPECT_EQ(c->rules[3].burn_windows.size(), 4u);
  EXPECT_EQ(c->rules[4].keep_firing_for, 5min);  // events stay news for a while by default
  EXPECT_EQ(c->dispatch.root.routes.at(0).receiver, "pager");
  EXPECT_EQ(c->receivers[1].url, "https://events.pagerduty.com/v2/enqueue");
  EXPECT_EQ(c->receivers[1].routing_key, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(c->dispatch.resend.at("am"), 30s);
}

TEST(AlertConfigTest, ErrorsSayWhereAndWhat) {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"alerting: {rules: [{alert: X, kind: bogus}], route: {receiver: r}, receivers: [{name: r, webhook: {url: 'http://x'}}]}",
       "alerting.rules[0].kind: expected one of probe_health"},
      {"alerting: {rules: [{alert: X, kind: failure_ratio, window: 5m}], route: {receiver: r}, receivers: [{name: r, webhook: {url: 'http://x'}}]}",
       "alerting.rules[0].threshold"},
      {"alerting: {rules: [{alert: X, kind: probe_health, threshold: 1}], route: {receiver: r}, receivers: [{name: r, webhook: {url: 'http://x'}}]}",
       "alerting.rules[0].threshold: only for kind failure_ratio or latency"},
      {"alerting: {rules: [{alert: X, kind: probe_health, matchers: ['oem~bmw']}], route: {receiver: r}, receivers: [{name: r, webhook: {url: 'http://x'}}]}",
       "alerting.rules[0].matchers[0]: expected =, !=, =~ or !~"},
      {"alerting: {rules: [{alert: X, kind: probe_health, annotations: {s: '{{ .Labels.x }}'}}], route: {receiver: r}, receivers: [{name: r, webhook: {url: 'http://x'}}]}",
       "alerting.rules[0].annotations.s: unknown template field"},
      {"alerting: {route: {receiver: nobody}, receivers: [{name: r, webhook: {url: 'http://x'}}]}",
       "alerting.route.receiver: no receiver named \"nobody\""},
      {"alerting: {route: {receiver: r}, receivers: [{name: r, webhook: {url: 'http://x', tiemout: 1s}}]}",
       "alerting.receivers[0].webhook.tiemout: unknown key"},
      {"alerting: {route: {receiver: r}, receivers: [{name: r, webhook: {url: 'ftp://x'}}]}",
       "alerting.receivers[0].webhook.url: expected an http:// or https:// URL"},
      {"alerting: {route: {receiver: r}, receivers: [{name: r}]}", "exactly one of webhook, slack, pagerduty, alertmanager"},
      {"alerting: {rules: [{alert: X, kind: probe_health}, {alert: X, kind: probe_health}], route: {receiver: r}, receivers: [{name: r, webhook: {url: 'http://x'}}]}",
       "alerting.rules[1].alert: another rule is named \"X\""},
      {"alerting: {rules: [{alert: X, kind: burn_rate, objective: 99.9, windows: [{long: 5m, short: 1h, factor: 14.4, severity: page}]}], route: {receiver: r}, receivers: [{name: r, webhook: {url: 'http://x'}}]}",
       "short window must be shorter"},
      {"alerting: {rules: [{alert: X, kind: probe_health}], receivers: [{name: r, webhook: {url: 'http://x'}}]}",
       "alerting needs a route"},
  };
  for (const auto& c : cases) {
    std::string errors;
    EXPECT_FALSE(parse(c.yaml, &errors)) << c.yaml;
    EXPECT_NE(errors.find(c.expected), std::string::npos) << "want: " << c.expected << "\ngot: " << errors;
    EXPECT_NE(errors.find("a.yaml:1:"), std::string::npos) << errors;
  }
}

}  // namespace
}  // namespace greenlight::alerts
