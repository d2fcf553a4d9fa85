// Router drivers: how the controller moves traffic and reads per-colour traffic counters.
// `builtin` talks to `greenlight proxy`'s runtime API on its Unix socket; `haproxy` to HAProxy's
// runtime API (stats socket, Unix or TCP). One weight change is one command line, so the two
// colours never both drop to zero. Thread-compatible; calls block (with a timeout).
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "greenlight/common/status.h"
#include "greenlight/controller/rollout.h"

namespace greenlight::controller {

// Cumulative answers of one colour since the router started: by status class 1xx..5xx, and
// (greenlight proxy only) the upstream latency histogram: cumulative counts per bound in
// `latency_le`, one more for +Inf. Empty when the router has no histogram (HAProxy).
struct ColorCounters {
  std::array<uint64_t, 6> by_class{};
  std::vector<double> latency_le;
  std::vector<uint64_t> latency_cumulative;
  uint64_t total() const { return by_class[1] + by_class[2] + by_class[3] + by_class[4] + by_class[5]; }
};

class Router {
 public:
  virtual ~Router() = default;
  // `candidate` gets `weight` (0-100), the other colour 100 - weight, in one atomic change.
  virtual Status setWeights(Color candidate, int weight) = 0;
  virtual StatusOr<std::array<ColorCounters, 2>> counters() = 0;
  // Mirroring (greenlight proxy only): copy `percent` of the GET/HEAD requests to the colour at
  // weight 0 (0: off), and the answers to those copies per colour, as counters() counts.
  virtual Status setMirror(int percent) = 0;
  virtual StatusOr<std::array<ColorCounters, 2>> mirroredCounters() = 0;
  virtual std::string describe() const = 0;
};

struct BuiltinRouterSpec {
  std::string socket;   // greenlight proxy's runtime_api.socket
  std::string service;  // the proxy's service name
};

struct HaproxyRouterSpec {
  std::string socket;   // stats socket path, or
  std::string address;  // host:port of `stats socket ipv4@...`
  std::string backend;
  std::map<std::string, std::vector<std::string>> servers;  // "blue"/"green" -> server names
};

std::unique_ptr<Router> makeBuiltinRouter(BuiltinRouterSpec spec, Duration timeout);
std::unique_ptr<Router> makeHaproxyRouter(HaproxyRouterSpec spec, Duration timeout);

// Sends one command line to a runtime API (Unix socket path, or host:port) and reads the
// answer until the peer closes. For the drivers and tests.
StatusOr<std::string> runtimeCommand(const std::string& socket_or_address, const std::string& line, Duration timeout);

}  // namespace greenlight::controller
