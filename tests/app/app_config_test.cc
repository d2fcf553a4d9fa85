#include "greenlight/app/app_config.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace greenlight::app {
namespace {

EnvLookup env(std::map<std::string, std::string> vars) { return testing::fakeEnv(std::move(vars)); }

TEST(AppConfig, UnknownTopLevelKeyIsAnError) {
  ConfigErrors errors;
  auto c = parseAppConfig("g.yaml", "probes: []\nprobs: []\n", errors, env({}));
  EXPECT_FALSE(c);
  EXPECT_NE(errors.format().find("g.yaml:2:1: probs: unknown key"), std::string::npos) << errors.format();
}

TEST(AppConfig, ErrorsFromEverySectionAreReportedTogether) {
  ConfigErrors errors;
  auto c = parseAppConfig("g.yaml", R"(
log: {format: xml}
admin: {listen: "nowhere"}
probes:
  - {name: a, url: "https://x/", timeout: 2}
)", errors, env({}));
  EXPECT_FALSE(c);
  const std::string all = errors.format();
  EXPECT_NE(all.find("log.format: expected text or json"), std::string::npos) << all;
  EXPECT_NE(all.find("admin.listen: expected host:port"), std::string::npos) << all;
  EXPECT_NE(all.find("probes[0].timeout: expected a duration"), std::string::npos) << all;
  EXPECT_EQ(errors.size(), 3u) << all;
}

TEST(AppConfig, AnalysisProbesMustNameAConfiguredProbe) {
  const std::string yaml = R"(
probes:
  - {name: vehicles-api, url: "http://127.0.0.1:8080/"}
rollouts:
  services:
    - name: vehicles
      router: {builtin: {socket: /run/p.sock}}
      analysis: {probes: [vehicles-api, vehicle-api]}
)";
  ConfigErrors errors;
  EXPECT_FALSE(parseAppConfig("g.yaml", yaml, errors, env({})));
  EXPECT_NE(errors.format().find("g.yaml:8:"), std::string::npos) << errors.format();
  EXPECT_NE(errors.format().find("rollouts.services[0].analysis.probes[1]: no probe named \"vehicle-api\""), std::string::npos)
      << errors.format();
  EXPECT_EQ(errors.size(), 1u) << errors.format();
}

TEST(AppConfig, EmptyFileIsAnError) {
  ConfigErrors errors;
  EXPECT_FALSE(parseAppConfig("g.yaml", "", errors, env({})));
  EXPECT_NE(errors.format().find("the file is empty"), std::string::npos);
}

TEST(AppConfig, TheShippedDemoConfigIsValid) {
  std::map<std::string, std::string> vars = {
      {"SIM_PLATFORM_URL", "https://127.0.0.1:1"}, {"SIM_PLATFORM_ADDR", "127.0.0.1:1"},
      {"SIM_CA_FILE", "/tmp/ca.pem"}, {"SIM_CLIENT_ID", "id"}, {"SIM_CLIENT_SECRET", "secret"},
      {"SIM_RECEIVER_URL", "http://127.0.0.1:3/receiver"}, {"GREENLIGHT_DEMO_STATE_DIR", "/tmp/gl"},
      {"SIM_RELEASE_BLUE_ADDR", "127.0.0.1:4"}, {"SIM_RELEASE_GREEN_ADDR", "127.0.0.1:5"},
      {"GREENLIGHT_DEMO_PROXY_SOCKET", "/tmp/gl/proxy.sock"}, {"GREENLIGHT_DEMO_PROXY_URL", "http://127.0.0.1:6"}};
  for (const char* oem : {"TESLA", "BMW", "FORD", "HYUNDAI"}) {
    vars[std::string("SIM_") + oem + "_URL"] = "https://127.0.0.1:2";
    vars[std::string("SIM_") + oem + "_ADDR"] = "127.0.0.1:2";
  }
  ConfigErrors errors;
  auto c = loadAppConfig(std::string(GREENLIGHT_SOURCE_DIR) + "/examples/demo.yaml", errors, env(vars));
  ASSERT_TRUE(c) << errors.format();
  EXPECT_GE(c->probes.size(), 10u);
  EXPECT_GE(c->alerting.rules.size(), 3u);
  EXPECT_EQ(c->rollouts.services.size(), 1u);
}

TEST(AppConfig, TheShippedRolloutExampleIsValid) {
  ConfigErrors errors;
  auto c = loadAppConfig(std::string(GREENLIGHT_SOURCE_DIR) + "/examples/rollout.yaml", errors, env({}));
  ASSERT_TRUE(c) << errors.format();
  ASSERT_EQ(c->rollouts.services.size(), 1u);
  EXPECT_EQ(c->rollouts.services[0].rollout.strategy.steps, (std::vector<int>{10, 50, 100}));
}

TEST(AppConfig, MissingFileIsAClearError) {
  ConfigErrors errors;
  EXPECT_FALSE(loadAppConfig("/nonexistent/greenlight.yaml", errors, env({})));
  EXPECT_EQ(errors.format(), "/nonexistent/greenlight.yaml: cannot read the file\n");
}

}  // namespace
}  // namespace greenlight::app

#include "greenlight/app/proxy_service.h"

namespace greenlight::app {
namespace {

TEST(ProxyAppConfig, TheShippedExampleIsValid) {
  ConfigErrors errors;
  auto c = loadProxyConfig(std::string(GREENLIGHT_SOURCE_DIR) + "/examples/proxy.yaml", errors, testing::fakeEnv({}));
  ASSERT_TRUE(c) << errors.format();
  EXPECT_EQ(c->proxy.listeners.size(), 1u);
  EXPECT_EQ(c->proxy.routes.services.at("vehicles").weight, (std::array<int, 2>{100, 0}));
}

TEST(ProxyAppConfig, UnknownTopLevelKeyIsAnError) {
  testing::TempDir dir;
  ConfigErrors errors;
  auto c = loadProxyConfig(dir.write("p.yaml", "proxy: {services: []}\nproxie: {}\n"), errors, testing::fakeEnv({}));
  EXPECT_FALSE(c);
  EXPECT_NE(errors.format().find(":2:1: proxie: unknown key"), std::string::npos) << errors.format();
}

}  // namespace
}  // namespace greenlight::app
