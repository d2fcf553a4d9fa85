// `greenlight proxy`'s data plane: HTTP/1.1 listeners that send each request to the blue or the
// green endpoints of a service by weight (read from the RoutingStore per request, so a weight
// change applies to the very next request, keep-alive or not), or to the preview colour a
// header or cookie asks for. Upstream keep-alive pools per endpoint; a failed connect is retried
// once on another endpoint of the colour; 502/503/504 with a short body when nothing can serve.
// HTTP parsing is Boost.Beast's; request-smuggling shapes get a 400 and the connection closes.
// Thread-safe.
#pragma once

#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "greenlight/common/status.h"
#include "greenlight/common/time_source.h"
#include "greenlight/proxy/proxy_config.h"
#include "greenlight/proxy/routing_store.h"

namespace greenlight::proxy {

// Listening sockets taken over from a running proxy (see listener_handover.h), and what to do
// once this proxy has handed its own over to a successor (stop: it no longer accepts).
struct Handover {
  std::map<std::string, int> inherited;  // service -> listening fd
  std::function<void()> on_handed_over;
};

class ProxyServer {
 public:
  static StatusOr<std::unique_ptr<ProxyServer>> start(const ProxyConfig& config, RoutingStore& store,
                                                      std::shared_ptr<prometheus::Registry> registry,
                                                      const TimeSource& time, Handover handover = {});
  ~ProxyServer();
  // The port a service listens on (after binding port 0), -1 if unknown.
  int port(const std::string& service) const;
  // Stops accepting, lets requests in flight finish (up to `grace`), closes idle connections.
  void stop(Duration grace);
  // Per service and colour: requests by status class, retries, upstream errors (JSON).
  std::string statsJson() const;
  // Reads the TLS certificate, key and client CA of every TLS listener again, from the paths in
  // `listeners` (the same services as at start): new handshakes use them, open connections keep
  // theirs. All or nothing: if any file is bad, no listener changes. `check_only`: read and
  // check, apply nothing.
  Status reloadTls(const std::vector<ListenerConfig>& listeners, bool check_only = false);
  // Starts a new access-log file at the configured path (after logrotate moved the old one); on
  // failure the old file stays in use. Nothing to do without an access log.
  Status reopenAccessLog();

 private:
  struct Impl;
  explicit ProxyServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace greenlight::proxy
