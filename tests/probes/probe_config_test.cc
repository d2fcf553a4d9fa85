#include <gtest/gtest.h>

#include "greenlight/probes/probe_spec.h"

namespace greenlight::probes {
namespace {

using namespace std::chrono_literals;

std::vector<ProbeSpec> parse(const std::string& yaml, ConfigErrors& errors,
                             std::map<std::string, std::string> env = {}) {
  ConfigReader r("probes.yaml", errors, [env](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
  auto root = r.loadString(yaml);
  if (!root) return {};
  return parseProbes(r, *root);
}

TEST(ProbeConfig, SingleHttpProbeWithDefaults) {
  ConfigErrors errors;
  auto probes = parse(R"(
probe_defaults: {interval: 15s, timeout: 3s, labels: {env: prod}}
probes:
  - name: platform
    labels: {oem: platform}
    url: https://api.example/health
)", errors);
  ASSERT_TRUE(errors.empty()) << errors.format();
  ASSERT_EQ(probes.size(), 1u);
  const auto& p = probes[0];
  EXPECT_EQ(p.interval, 15s);
  EXPECT_EQ(p.timeout, 3s);
  EXPECT_EQ(p.labels, (std::vector<std::pair<std::string, std::string>>{{"env", "prod"}, {"oem", "platform"}}));
  ASSERT_EQ(p.steps.size(), 1u);
  EXPECT_EQ(p.steps[0].kind, StepKind::kHttp);
  EXPECT_FALSE(p.tls.insecure_skip_verify);  // verification on by default
  EXPECT_TRUE(p.steps[0].conditions.empty());
  const auto& defaults = effectiveConditions(p.steps[0]);  // default: 2xx
  ASSERT_EQ(defaults.size(), 2u);
  EXPECT_EQ(defaults[0].text, "[STATUS] >= 200");
  EXPECT_EQ(defaults[1].text, "[STATUS] < 300");
}

TEST(ProbeConfig, TcpAndTlsKinds) {
  ConfigErrors errors;
  auto probes = parse(R"(
probes:
  - {name: t, url: "tcp://127.0.0.1:8080"}
  - {name: c, url: "tls://127.0.0.1:8443", tls: {server_name: api.example}, conditions: ["[CERTIFICATE_EXPIRATION] > 72h"]}
)", errors);
  ASSERT_TRUE(errors.empty()) << errors.format();
  EXPECT_EQ(probes[0].steps[0].kind, StepKind::kTcp);
  EXPECT_EQ(probes[0].steps[0].url, "127.0.0.1:8080");
  EXPECT_EQ(effectiveConditions(probes[0].steps[0]).at(0).text, "[CONNECTED] == true");
  EXPECT_EQ(probes[1].steps[0].kind, StepKind::kTls);
  EXPECT_EQ(probes[1].tls.server_name, "api.example");
}

TEST(ProbeConfig, FlowKeepsCapturedNamesAndExpandsSecretsFromEnvironment) {
  ConfigErrors errors;
  auto probes = parse(R"(
probes:
  - name: flow
    steps:
      - name: token
        oauth2: {token_url: "https://a/token", client_id: id, client_secret: "${SECRET}", scopes: [read_odometer]}
      - name: vehicles
        url: https://a/v2.0/vehicles
        headers: {Authorization: "Bearer ${token}"}
        capture: {vehicle_id: "[BODY].vehicles[0].id"}
      - name: odometer
        url: "https://a/v2.0/vehicles/${vehicle_id}/odometer"
)", errors, {{"SECRET", "hunter2-hunter2"}});
  ASSERT_TRUE(errors.empty()) << errors.format();
  const auto& steps = probes[0].steps;
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].kind, StepKind::kOAuth2);
  EXPECT_EQ(steps[0].oauth2.client_secret, "hunter2-hunter2");
  EXPECT_EQ(steps[0].oauth2.scopes, std::vector<std::string>{"read_odometer"});
  EXPECT_EQ(steps[1].headers[0].second, "Bearer ${token}");
  EXPECT_EQ(steps[1].captures[0].name, "vehicle_id");
  EXPECT_EQ(steps[2].url, "https://a/v2.0/vehicles/${vehicle_id}/odometer");
}

TEST(ProbeConfig, UsingACaptureBeforeItIsMadeIsAnError) {
  ConfigErrors errors;
  auto probes = parse(R"(
probes:
  - name: flow
    steps:
      - {name: a, url: "https://a/${vehicle_id}"}
      - {name: b, url: "https://a/", capture: {vehicle_id: "[BODY].id"}}
)", errors);
  EXPECT_TRUE(probes.empty());
  ASSERT_EQ(errors.size(), 1u) << errors.format();
  EXPECT_NE(errors.all()[0].toString().find("probes.yaml:5:24: probes[0].steps[0].url: ${vehicle_id} is neither"),
            std::string::npos) << errors.format();
}

TEST(ProbeConfig, EveryErrorIsReportedWithPlaceAndField) {
  ConfigErrors errors;
  auto probes = parse(R"(
probes:
  - name: a
    url: https://x/
    intervall: 5s
  - name: a
    url: ftp://x/
  - name: c
    url: https://x/
    interval: 30
    conditions: ["[STAUTS] == 200"]
  - name: d
    url: https://x/
    timeout: 1m
    interval: 30s
    labels: {probe: x, "bad-name": y}
  - name: e
    url: https://x/
    method: FETCH
    http_version: "3"
    health: {failure_threshold: 0}
)", errors);
  EXPECT_TRUE(probes.empty());
  const std::string all = errors.format();
  for (const char* want : {
           "probes.yaml:5:5: probes[0].intervall: unknown key",
           "probes.yaml:6:11: probes[1].name: another probe already has the name \"a\"",
           "probes.yaml:7:10: probes[1].url: expected a URL starting with http://",
           "probes.yaml:10:15: probes[2].interval: expected a duration like \"30s\"",
           "probes[2].conditions[0]: condition \"[STAUTS] == 200\": unknown placeholder [STAUTS]",
           "probes[3].timeout: must be more than 0 and at most the interval",
           "probes[3].labels.probe: label name is reserved",
           "probes[3].labels.bad-name: label names are letters",
           "probes[4].method: expected one of GET",
           "probes[4].http_version: expected \"1.1\" or \"2\"",
           "probes[4].health.failure_threshold: expected a whole number from 1 to 1000",
       }) {
    EXPECT_NE(all.find(want), std::string::npos) << "missing: " << want << "\nin:\n" << all;
  }
}

TEST(ProbeConfig, UrlAndStepsAreExclusive) {
  ConfigErrors errors;
  parse(R"(
probes:
  - name: a
    url: https://x/
    steps: [{url: https://y/}]
)", errors);
  EXPECT_NE(errors.format().find("a probe has either url or steps"), std::string::npos) << errors.format();
}

TEST(ProbeConfig, FingerprintIgnoresLabelsButNotBehaviour) {
  ConfigErrors errors;
  auto a = parse("probes: [{name: a, url: 'https://x/', labels: {oem: bmw}}]", errors);
  auto b = parse("probes: [{name: a, url: 'https://x/', labels: {oem: ford}}]", errors);
  auto c = parse("probes: [{name: a, url: 'https://x/', interval: 5s, timeout: 1s}]", errors);
  ASSERT_TRUE(errors.empty()) << errors.format();
  EXPECT_EQ(a[0].fingerprint(), b[0].fingerprint());
  EXPECT_NE(a[0].fingerprint(), c[0].fingerprint());
}

}  // namespace
}  // namespace greenlight::probes
