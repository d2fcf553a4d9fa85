// The `proxy:` section of `greenlight proxy --config FILE`.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "greenlight/common/config_reader.h"
#include "greenlight/common/sealed.h"
#include "greenlight/proxy/routing_table.h"

namespace greenlight::proxy {

using namespace std::chrono_literals;

struct ListenerConfig {
  std::string service;
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  // TLS termination (TLS 1.2+): both set, or neither (plain HTTP). With a client CA, clients
  // must present a certificate that chains to it (mTLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  std::string field;  // where it came from ("proxy.services[0]"), for error messages
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

// Active health checks of one service's endpoints (services[].health_check): every `interval`
// each endpoint that is not in maint gets `GET path` on a connection of its own; an answer
// 2xx or 3xx within `timeout` passes. `fall` failures in a row take the endpoint out of rotation
// (as a passive ejection does: used only if nothing else of its colour can serve), `rise` passes
// in a row bring it back. An endpoint counts as passing until checked: a restart does not take
// a whole colour out while its first checks run.
struct HealthCheck {
  std::string path = "/healthz";
  std::string host;  // the Host header; empty: the endpoint's address
  Duration interval{5s};
  Duration timeout{2s};
  int rise = 2;
  int fall = 3;
};

// Long-lived connections (WebSocket and other Upgrade tunnels) to a colour whose weight drops to
// 0 are closed after `grace`, each at a random moment within the following `spread`: clients
// reconnect to the new colour a few at a time instead of in one storm.
struct LongLivedDrain {
  Duration grace{30s};
  Duration spread{30s};
};

// How the access log writes the client's address (see access_log.h).
enum class AccessLogClient { kTruncated, kFull, kNone };
struct AccessLogConfig {
  std::string path;  // empty: no access log
  AccessLogClient client = AccessLogClient::kTruncated;
};

struct ProxyConfig {
  std::vector<ListenerConfig> listeners;
  RoutingTable routes;  // from config: weights and endpoints
  ProxyTimeouts timeouts;
  PassiveHealth passive_health;
  std::map<std::string, HealthCheck> health_checks;  // by service; a service without one is not checked
  std::string runtime_socket;  // Unix socket of the runtime API; empty: none
  std::string state_file;      // persisted routing table; empty: none
  std::optional<AesKey> state_key;  // from the top-level state_encryption: seals state_file
  int threads = 0;  // event loops; 0 (not set): one per processor, as HAProxy's nbthread
  // TCP_DEFER_ACCEPT on the listeners: the kernel hands over a connection once its first bytes
  // have arrived (or after about a second), so the first read never waits (nginx's `deferred`,
  // HAProxy's `defer-accept`). Off for clients that connect and wait for the server to speak.
  bool defer_accept = true;
  size_t max_header_bytes = 16 << 10;
  size_t max_body_bytes = 8 << 20;
  // Request bodies up to this size are read whole before forwarding, so a request can be retried
  // on another endpoint; larger and chunked ones are streamed. Responses are always streamed.
  size_t buffer_request_bytes = 64 << 10;
  size_t max_idle_upstream_per_endpoint = 64;
  // Each event loop keeps up to 64 request buffers (24 KiB each) spare for its next requests;
  // those no request needed for this long are freed, and the memory goes back to the system.
  Duration spare_buffer_release{10s};
  // Client connections held at most (HAProxy's maxconn); more wait in the listen queue until
  // one closes. 0 (not set): what the open-file limit allows (defaultMaxConnections).
  int max_connections = 0;
  LongLivedDrain long_lived;
  AccessLogConfig access_log;
  // The header a request's id travels in (proxy.request_id.header), to the upstream and back to
  // the client; empty: no request ids.
  std::string request_id_header;
};

// max_connections when it is not set: half the descriptors the open-file limit leaves after a
// reserve (each client connection may hold one to an upstream).
int defaultMaxConnections();

ProxyConfig parseProxyConfig(ConfigReader& r, const YAML::Node& node, const std::string& field);

}  // namespace greenlight::proxy
