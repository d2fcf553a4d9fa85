// `greenlight proxy --config FILE`: the data plane process. Owns the routing store, the proxy
// and an admin server with /metrics, GET /api/v1/routes, GET /api/v1/stats,
// POST /api/v1/runtime (a runtime command in the body, operator role) and POST /-/reload
// (admin role; also SIGHUP). Thread-safe.
#pragma once

#include <functional>
#include <mutex>
#include <memory>
#include <optional>
#include <string>

#include "greenlight/common/admin_server.h"
#include "greenlight/common/config_reader.h"
#include "greenlight/common/logging.h"
#include "greenlight/common/time_source.h"
#include "greenlight/proxy/proxy_server.h"

namespace greenlight::app {

struct ProxyAppConfig {
  LogOptions log;
  AdminServerOptions admin;
  proxy::ProxyConfig proxy;
};

std::optional<ProxyAppConfig> loadProxyConfig(const std::string& path, ConfigErrors& errors,
                                              EnvLookup env = processEnv());

class ProxyService {
 public:
  // `takeover`: take the listening sockets of the proxy running with the same runtime socket
  // instead of binding them (a restart or config change that drops no connection attempt).
  // `on_handed_over`: called when a successor has taken this proxy's listeners.
  static StatusOr<std::unique_ptr<ProxyService>> start(const std::string& config_path,
                                                       std::optional<int> admin_port = std::nullopt,
                                                       bool takeover = false,
                                                       std::function<void()> on_handed_over = nullptr);
  ~ProxyService();
  void stop(Duration grace);
  int port(const std::string& service) const { return proxy_->port(service); }
  int adminPort() const { return admin_->port(); }
  proxy::RoutingStore& store() { return *store_; }
  // Reads the config file again and applies what can change without a restart: the TLS
  // certificates, keys and client CAs of the listeners and the admin API, and the admin
  // tokens. Routes change through the runtime API, everything else with `--takeover`. All or
  // nothing: a bad file leaves everything as it was.
  Status reload();

 private:
  ProxyService() = default;
  std::unique_ptr<proxy::RoutingStore> store_;
  std::unique_ptr<proxy::ProxyServer> proxy_;
  std::unique_ptr<AdminServer> admin_;
  RealTimeSource time_;
  std::string config_path_;
  std::mutex reload_mu_;
};

}  // namespace greenlight::app
