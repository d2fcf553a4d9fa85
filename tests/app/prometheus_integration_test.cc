// A real Prometheus (Debian package) scrapes greenlight's /metrics on 127.0.0.1, with a bearer
// token, and promtool accepts the exposition.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "greenlight/app/service.h"
#include "greenlight/simulator/simulator.h"
#include "support/test_support.h"

namespace greenlight::app {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;

const std::string kToken = "prometheus-scrape-token-123";

TEST(PrometheusIntegration, ScrapesProbeSeriesAndPromtoolAcceptsTheExposition) {
  testing::TempDir dir;
  simulator::SimulatorOptions so;
  for (auto& oem : so.oems) oem.latency = oem.jitter = 0ms;
  auto sim = simulator::Simulator::start(so);
  ASSERT_TRUE(sim.ok());
  const std::string platform = "https://127.0.0.1:" + std::to_string((*sim)->platformPort());
  const std::string bmw = "127.0.0.1:" + std::to_string((*sim)->oemPort("bmw"));
  const std::string cfg = dir.write("g.yaml", R"(
log: {level: warn}
admin:
  listen: 127.0.0.1:0
  tokens: [{name: prometheus, role: viewer, token: )" + kToken + R"(}]
probe_defaults: {interval: 1s, timeout: 1s, tls: {ca_file: )" + (*sim)->caFile() + R"(}, labels: {env: test}}
probes:
  - {name: platform-health, labels: {oem: platform}, url: ")" + platform + R"(/health"}
  - {name: bmw-certificate, labels: {oem: bmw}, url: "tls://)" + bmw + R"(", conditions: ["[CERTIFICATE_EXPIRATION] > 72h"]}
)");
  ServiceOptions o;
  o.config_path = cfg;
  o.admin_port = 0;
  auto svc = Service::start(o);
  ASSERT_TRUE(svc.ok()) << svc.status().message();
  const int admin = (*svc)->adminPort();

  // promtool lints the exposition once every probe has reported.
  ASSERT_TRUE(testing::waitUntil([&] {
    auto m = testing::httpGet(admin, "/metrics", kToken).body;
    return m.find("probe_success{probe=\"bmw-certificate\"") != std::string::npos &&
           m.find("probe_success{probe=\"platform-health\"") != std::string::npos;
  }));
  const std::string exposition = dir.write("metrics.txt", testing::httpGet(admin, "/metrics", kToken).body);
  ChildProcess promtool({"sh", "-c", "promtool check metrics < " + exposition}, dir.path() + "/promtool.txt");
  EXPECT_EQ(promtool.wait(30s), 0) << testing::readFile(dir.path() + "/promtool.txt");
  EXPECT_EQ(testing::readFile(dir.path() + "/promtool.txt"), "") << "promtool found lint problems";

  const int prom_port = testing::freePort();
  const std::string prom_cfg = dir.write("prometheus.yml", R"(
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: greenlight
    authorization: {credentials: )" + kToken + R"(}
    static_configs: [{targets: ["127.0.0.1:)" + std::to_string(admin) + R"("]}]
)");
  ChildProcess prometheus({"prometheus", "--config.file=" + prom_cfg, "--storage.tsdb.path=" + dir.path() + "/tsdb",
                           "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                          dir.path() + "/prometheus.log");
  ASSERT_TRUE(testing::waitUntil([&] { return testing::httpGet(prom_port, "/-/ready").status == 200; }, 60s))
      << testing::readFile(dir.path() + "/prometheus.log");

  nlohmann::json result;
  ASSERT_TRUE(testing::waitUntil([&] {
    auto r = testing::httpGet(prom_port, "/api/v1/query?query=probe_success");
    if (r.status != 200) return false;
    result = nlohmann::json::parse(r.body)["data"]["result"];
    return result.size() == 2;
  }, 60s)) << result.dump();
  std::map<std::string, std::string> values;
  for (const auto& series : result) {
    EXPECT_EQ(series["metric"]["job"], "greenlight");
    EXPECT_EQ(series["metric"]["env"], "test");
    values[series["metric"]["probe"]] = series["value"][1];
  }
  EXPECT_EQ(values["platform-health"], "1");
  EXPECT_EQ(values["bmw-certificate"], "0") << "the BMW certificate expires within 72h";

  auto failures = testing::httpGet(prom_port, "/api/v1/query?query=greenlight_probe_failures_total");
  EXPECT_NE(failures.body.find("\"reason\":\"certificate\""), std::string::npos) << failures.body;
  prometheus.signal(SIGTERM);
  EXPECT_EQ(prometheus.wait(30s), 0);
  (*svc)->stop();
}

}  // namespace
}  // namespace greenlight::app
