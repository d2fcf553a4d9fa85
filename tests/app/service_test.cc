// The `greenlight run` service in-process: admin API, reload that keeps the running config.
#include "greenlight/app/service.h"

#include "greenlight/common/crypto.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "greenlight/common/crypto.h"
#include "greenlight/simulator/simulator.h"
#include "support/test_support.h"

namespace greenlight::app {
namespace {

using namespace std::chrono_literals;
using testing::httpGet;
using testing::httpPost;

const std::string kViewer = "viewer-token-abcdefghij";
const std::string kOperator = "operator-token-abcdefghij";
const std::string kAdmin = "admin-token-abcdefghijklmn";

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    simulator::SimulatorOptions o;
    o.tls = false;
    for (auto& oem : o.oems) oem.latency = oem.jitter = 0ms;
    sim_ = std::move(simulator::Simulator::start(o).value());
  }

  std::string config(const std::vector<std::string>& probe_names, const std::string& extra = "") {
    std::string y = "log: {level: warn}\nadmin:\n  listen: 127.0.0.1:0\n  tokens:\n"
                    "    - {name: grafana, role: viewer, token: " + kViewer + "}\n"
                    "    - {name: alice, role: operator, token: " + kOperator + "}\n"
                    "    - {name: root, role: admin, token_hash: '" + hashToken(kAdmin) + "'}\n"  // salted, as configs keep it
                    "probes:\n";
    for (const auto& n : probe_names) {
      y += "  - {name: " + n + ", interval: 200ms, timeout: 200ms, url: 'http://127.0.0.1:" +
           std::to_string(sim_->platformPort()) + "/health'}\n";
    }
    return y + extra;
  }

  std::unique_ptr<Service> start(const std::string& path) {
    ServiceOptions o;
    o.config_path = path;
    o.admin_port = 0;
    auto s = Service::start(o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(s.value()) : nullptr;
  }

  std::vector<std::string> probeNames(int port) {
    auto r = httpGet(port, "/api/v1/probes", kViewer);
    std::vector<std::string> names;
    if (r.status != 200) return names;
    for (const auto& p : nlohmann::json::parse(r.body)) names.push_back(p["name"]);
    return names;
  }

  testing::TempDir dir_;
  std::unique_ptr<simulator::Simulator> sim_;
};

TEST_F(ServiceTest, ServesProbeStateAndMetrics) {
  auto svc = start(dir_.write("g.yaml", config({"platform"})));
  ASSERT_TRUE(svc);
  const int port = svc->adminPort();
  EXPECT_EQ(httpGet(port, "/readyz").status, 200);
  ASSERT_TRUE(testing::waitUntil([&] {
    auto r = httpGet(port, "/api/v1/probes", kViewer);
    return r.status == 200 && r.body.find("\"success\":true") != std::string::npos;
  }));
  auto metrics = httpGet(port, "/metrics", kViewer).body;
  EXPECT_NE(metrics.find("probe_success{probe=\"platform\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("greenlight_config_last_reload_successful 1"), std::string::npos);
}

TEST_F(ServiceTest, FailedReloadKeepsTheRunningConfigAndSaysWhy) {
  const std::string path = dir_.write("g.yaml", config({"a", "b"}));
  auto svc = start(path);
  ASSERT_TRUE(svc);
  const int port = svc->adminPort();
  std::ofstream(path) << config({"a"}, "  - {name: broken, url: 'https://x/', intervall: 5s}\n");
  auto r = httpPost(port, "/-/reload", "", kAdmin);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("intervall: unknown key"), std::string::npos) << r.body;
  EXPECT_EQ(probeNames(port), (std::vector<std::string>{"a", "b"}));
  EXPECT_NE(httpGet(port, "/metrics", kViewer).body.find("greenlight_config_last_reload_successful 0"),
            std::string::npos);
  // Fixed: the reload takes.
  std::ofstream(path) << config({"a", "c"});
  EXPECT_EQ(httpPost(port, "/-/reload", "", kAdmin).status, 200);
  EXPECT_EQ(probeNames(port), (std::vector<std::string>{"a", "c"}));
}

TEST_F(ServiceTest, ReloadNeedsTheAdminRole) {
  auto svc = start(dir_.write("g.yaml", config({"a"})));
  ASSERT_TRUE(svc);
  EXPECT_EQ(httpPost(svc->adminPort(), "/-/reload", "", kViewer).status, 403);
  const auto r = httpPost(svc->adminPort(), "/-/reload", "", kOperator);
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("this needs the admin role"), std::string::npos) << r.body;
  EXPECT_EQ(httpPost(svc->adminPort(), "/-/reload", "", kAdmin).status, 200);
  EXPECT_EQ(httpPost(svc->adminPort(), "/-/reload", "").status, 401);
}

TEST_F(ServiceTest, ReloadRotatesTokensAndRefusesAnAdminChangeItCannotApply) {
  const std::string path = dir_.write("g.yaml", config({"a"}));
  auto svc = start(path);
  ASSERT_TRUE(svc);
  const int port = svc->adminPort();
  const std::string rotated = "operator-token-rotated-0123";
  std::string text = config({"a", "b"});
  text.replace(text.find(kOperator), kOperator.size(), rotated);
  std::ofstream(path) << text;
  ASSERT_EQ(httpPost(port, "/-/reload", "", kAdmin).status, 200);
  EXPECT_EQ(httpGet(port, "/api/v1/probes", kOperator).status, 401);  // the old token is gone
  EXPECT_EQ(httpGet(port, "/api/v1/probes", rotated).status, 200);

  // HTTPS cannot be switched on by a reload: refused as a whole, the probes stay as they were.
  text = config({"c"});
  text.replace(text.find("  tokens:"), 0, "  tls: {cert_file: /etc/ssl/x.pem, key_file: /etc/ssl/x-key.pem}\n");
  std::ofstream(path) << text;
  auto r = httpPost(port, "/-/reload", "", kAdmin);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("admin.tls added: switching between HTTP and HTTPS takes effect at the next restart"),
            std::string::npos) << r.body;
  EXPECT_EQ(probeNames(port), (std::vector<std::string>{"a", "b"}));
}

TEST_F(ServiceTest, StartWithABadConfigFailsWithEveryError) {
  ServiceOptions o;
  o.config_path = dir_.write("bad.yaml", "probes:\n  - {name: x, url: 'gopher://x'}\n  - {url: 'https://x/'}\n");
  auto s = Service::start(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("bad.yaml:2:"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("probes[1].name: is required"), std::string::npos) << s.status().message();
}

}  // namespace
}  // namespace greenlight::app
