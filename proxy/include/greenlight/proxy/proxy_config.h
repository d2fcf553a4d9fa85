// The `proxy:` section of `greenlight proxy --config FILE`.
#pragma once

#include <string>
#include <vector>

#include "greenlight/common/config_reader.h"
#include "greenlight/proxy/routing_table.h"

namespace greenlight::proxy {

using namespace std::chrono_literals;

struct ListenerConfig {
  std::string service;
  std::string host = "127.0.0.1";
  uint16_t port = 0;
};

struct ProxyTimeouts {
  Duration connect{2s};   // to an upstream
  Duration header{10s};   // client request head, and upstream response head
  Duration idle{60s};     // a keep-alive client connection with no request
  Duration request{30s};  // the whole upstream exchange
};

// Passive health: an endpoint that fails `failures` times in a row (connect error or 5xx) gets
// no requests for `ejection`, then is tried again. 0 failures turns it off.
struct PassiveHealth {
  int failures = 3;
  Duration ejection{10s};
};

struct ProxyConfig {
  std::vector<ListenerConfig> listeners;
  RoutingTable routes;  // from config: weights and endpoints
  ProxyTimeouts timeouts;
  PassiveHealth passive_health;
  std::string runtime_socket;  // Unix socket of the runtime API; empty: none
  std::string state_file;      // persisted routing table; empty: none
  int threads = 1;
  size_t max_header_bytes = 16 << 10;
  size_t max_body_bytes = 8 << 20;
  size_t max_idle_upstream_per_endpoint = 64;
};

ProxyConfig parseProxyConfig(ConfigReader& r, const YAML::Node& node, const std::string& field);

}  // namespace greenlight::proxy
