// The exported rule file passes `promtool check rules`, and `promtool test rules` shows the
// exported rules fire on the same situations as ours (Prometheus 2.42, Debian package).
#include "greenlight/alerts/prometheus_rules.h"

#include <gtest/gtest.h>

#include "greenlight/alerts/alert_config.h"
#include "support/test_support.h"

namespace greenlight::alerts {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;

std::vector<RuleSpec> rules() {
  ConfigErrors errors;
  ConfigReader r("a.yaml", errors, testing::fakeEnv({}));
  auto root = r.loadString(R"(
alerting:
  rules:
    - {alert: ProbeFailing, kind: probe_health, matchers: ['oem=~bmw|ford'], for: 2m, labels: {severity: page},
       annotations: {summary: '{{ $labels.probe }} failing'}}
    - {alert: OemErrors, kind: failure_ratio, by: [oem], window: 5m, threshold: 0.2}
    - {alert: ProbeErrors, kind: failure_ratio, window: 5m, threshold: 0.5}
    - {alert: Slow, kind: latency, quantile: 0.95, window: 10m, threshold: 800ms}
    - {alert: OemSloBurn, kind: burn_rate, objective: 99.9, by: [oem]}
    - {alert: RolledBack, kind: event, event: rollout_rolled_back}
    - {alert: OemDownFromTwoLocations, kind: probe_health, by: [oem], quorum: 2}
  route: {receiver: r}
  receivers: [{name: r, webhook: {url: 'http://127.0.0.1:1/'}}]
)");
  EXPECT_TRUE(root);
  auto c = parseAlertingConfig(r, (*root)["alerting"], "alerting");
  EXPECT_TRUE(errors.empty()) << errors.format();
  return c.rules;
}

TEST(PrometheusRulesTest, ExpressionsFollowTheRules) {
  const auto rs = rules();
  EXPECT_EQ(promqlFor(rs[0]), "greenlight_probe_healthy{oem=~\"bmw|ford\"} == 0");
  EXPECT_EQ(promqlFor(rs[1]),
            "(sum by (oem) (rate(greenlight_probe_failures_total{}[5m])) / sum by (oem) "
            "(rate(greenlight_probe_runs_total{}[5m]))) > 0.2");
  EXPECT_NE(promqlFor(rs[4], "page").find(" > 0.0144 and "), std::string::npos) << promqlFor(rs[4], "page");
  EXPECT_EQ(promqlFor(rs[6]), "count by (oem) (greenlight_probe_healthy{} == 0) >= 2");
  const std::string file = exportPrometheusRules(rs, 1s);
  EXPECT_NE(file.find("Not exported (an event raised inside Greenlight, no metric): RolledBack"), std::string::npos);
}

TEST(PrometheusRulesTest, PromtoolChecksAndUnitTestsTheExport) {
  testing::TempDir dir;
  dir.write("rules.yml", exportPrometheusRules(rules(), 1min));
  ChildProcess check({"promtool", "check", "rules", dir.path() + "/rules.yml"}, dir.path() + "/check.txt");
  ASSERT_EQ(check.wait(30s), 0) << testing::readFile(dir.path() + "/check.txt");

  // One BMW probe, once a second: an hour healthy, then a total outage.
  dir.write("test.yml", R"(
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'greenlight_probe_healthy{probe="bmw-odometer",oem="bmw"}'
        values: '1 1 0 0 0 0'
      - series: 'greenlight_probe_healthy{probe="bmw-odometer-us",oem="bmw"}'
        values: '1 1 1 1 0 0'
      - series: 'greenlight_probe_runs_total{probe="bmw-odometer",oem="bmw"}'
        values: '0+60x130'
      - series: 'greenlight_probe_failures_total{probe="bmw-odometer",oem="bmw",reason="status"}'
        values: '0x60 60+60x70'
    alert_rule_test:
      - eval_time: 3m
        alertname: ProbeFailing
        exp_alerts: []
      - eval_time: 5m
        alertname: ProbeFailing
        exp_alerts:
          - exp_labels: {probe: bmw-odometer, oem: bmw, severity: page}
            exp_annotations: {summary: bmw-odometer failing}
      - eval_time: 3m
        alertname: OemDownFromTwoLocations
        exp_alerts: []
      - eval_time: 5m
        alertname: OemDownFromTwoLocations
        exp_alerts:
          - exp_labels: {oem: bmw}
      - eval_time: 30m
        alertname: OemSloBurn
        exp_alerts: []
      - eval_time: 30m
        alertname: OemErrors
        exp_alerts: []
      - eval_time: 70m
        alertname: OemErrors
        exp_alerts:
          - exp_labels: {oem: bmw}
      - eval_time: 70m
        alertname: ProbeErrors
        exp_alerts:
          - exp_labels: {probe: bmw-odometer, oem: bmw}
      - eval_time: 70m
        alertname: OemSloBurn
        exp_alerts:
          - exp_labels: {oem: bmw, severity: page}
          - exp_labels: {oem: bmw, severity: ticket}
)");
  ChildProcess test({"promtool", "test", "rules", dir.path() + "/test.yml"}, dir.path() + "/test.txt");
  EXPECT_EQ(test.wait(60s), 0) << testing::readFile(dir.path() + "/test.txt") << testing::readFile(dir.path() + "/rules.yml");
}

}  // namespace
}  // namespace greenlight::alerts
