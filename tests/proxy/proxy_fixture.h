// A proxy in front of two test backends (blue, green), for the data plane's integration tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "greenlight/app/proxy_service.h"
#include "support/keep_alive_load.h"
#include "support/test_backend.h"
#include "support/test_support.h"

namespace greenlight::proxy {

using namespace std::chrono_literals;
using testing::RawConnection;
using testing::TestBackend;

inline std::string get(const std::string& path = "/") {
  return "GET " + path + " HTTP/1.1\r\nHost: vehicles\r\n\r\n";
}

// A sample's value on the proxy's /metrics (-1 when it is not there).
inline int metricValue(int admin_port, const std::string& series) {
  const std::string metrics = testing::httpGet(admin_port, "/metrics").body;
  const std::string key = "\n" + series + " ";  // a sample line, not its # HELP
  const size_t at = metrics.find(key);
  return at == std::string::npos ? -1 : std::stoi(metrics.substr(at + key.size()));
}

// The open client connections of the service.
inline int activeConnections(int admin_port) {
  return metricValue(admin_port, "greenlight_proxy_active_connections{service=\"vehicles\"}");
}

// Request buffers the proxy has allocated, in use or spare.
inline int connectionBuffers(int admin_port) { return metricValue(admin_port, "greenlight_proxy_connection_buffers"); }

// Load whose good answers come from a known backend (blue*, green).
class KeepAliveLoad : public testing::KeepAliveLoad {
 public:
  KeepAliveLoad(int port, int threads)
      : testing::KeepAliveLoad(port, threads, [](const std::string& b) { return b.rfind("blue", 0) == 0 || b == "green"; }) {}
};

class ProxyTest : public ::testing::Test {
 protected:
  // `extra`: lines of the proxy section; `service_extra`: lines of the service entry.
  void start(const std::string& blue, const std::string& green, const std::string& extra = "",
             const std::string& weights = "{blue: 100, green: 0}", const std::string& service_extra = "") {
    config_ = dir_.write("proxy.yaml", "log: {level: warn}\nadmin: {listen: 127.0.0.1:0}\nproxy:\n"
        "  state_file: " + dir_.path() + "/routes.json\n" + extra +
        "  services:\n    - name: vehicles\n      listen: 127.0.0.1:0\n"
        "      blue: [" + blue + "]\n      green: [" + green + "]\n"
        "      weights: " + weights + "\n"
        "      preview: {header: X-Greenlight-Color, cookie: greenlight-color}\n" + service_extra);
    auto svc = app::ProxyService::start(config_, 0);
    ASSERT_TRUE(svc.ok()) << svc.status().message();
    svc_ = std::move(svc.value());
    port_ = svc_->port("vehicles");
  }
  void setWeights(int blue, int green) {
    auto r = svc_->store().execute("set weight vehicles blue " + std::to_string(blue) + " green " +
                                       std::to_string(green), "test");
    ASSERT_TRUE(r.ok) << r.output;
  }

  testing::TempDir dir_;
  TestBackend blue_{"blue"};
  TestBackend green_{"green"};
  std::string config_;
  std::unique_ptr<app::ProxyService> svc_;
  int port_ = 0;
};

}  // namespace greenlight::proxy
