// A realistic connected-car platform for the demo and the tests: an OAuth2 token endpoint and
// vehicle endpoints (odometer, battery, fuel, location) on a platform server and on one HTTPS
// server per OEM, each with its own latency and error rate and a generated certificate (one near
// expiry). Faults are injected at runtime through a loopback admin endpoint. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "greenlight/common/status.h"
#include "greenlight/common/time_source.h"

namespace greenlight::simulator {

using namespace std::chrono_literals;

struct Fault {
  double error_rate = 0;      // fraction of requests answered with error_status
  int error_status = 503;
  Duration added_latency{0};
  bool hang = false;          // never answer (until the fault is cleared)
  double rate_limit = 0;      // fraction answered 429 with Retry-After
  bool reset = false;         // close the connection in the middle of the answer
  bool invalid_json = false;  // answer 200 with a body that is not JSON
};

struct OemProfile {
  std::string name;
  Duration latency{5ms};   // mean added latency
  Duration jitter{2ms};    // +/- uniform
  double error_rate = 0;   // background 5xx rate
  Duration cert_validity{365 * 24h};
  Duration cert_not_before{-1h};
};

struct SimulatorOptions {
  std::string host = "127.0.0.1";
  int platform_port = 0;  // 0: pick a free port
  int admin_port = 0;
  bool tls = true;
  std::string cert_dir;  // where certificates go; a new temp dir if empty
  std::string client_id = "demo-client";
  std::string client_secret = "demo-secret-change-me";
  Duration token_ttl{3600s};
  std::vector<OemProfile> oems = defaultOems();
  // Releases of a sample service ("vehicles") for blue-green demos and tests: plain HTTP servers
  // answering GET / and /health with their name; fault target "release-NAME".
  std::vector<std::string> releases;
  static std::vector<OemProfile> defaultOems();
};

class Simulator {
 public:
  static StatusOr<std::unique_ptr<Simulator>> start(SimulatorOptions options);
  ~Simulator();
  void stop();

  int platformPort() const;
  int adminPort() const;
  int oemPort(const std::string& oem) const;  // -1 if unknown
  int releasePort(const std::string& release) const;  // -1 if unknown
  std::string caFile() const;
  std::string scheme() const;
  std::vector<std::string> oemNames() const;
  const SimulatorOptions& options() const;
  // Target: "platform" or an OEM name. Faults on an OEM also apply to its vehicles on the
  // platform.
  Status setFault(const std::string& target, const Fault& fault);
  void clearFaults(const std::string& target);
  // Counts of token requests served (tests of token caching).
  int tokensIssued() const;
  // JSON describing ports, CA file and credentials (for `greenlight simulate` and the demo).
  std::string infoJson() const;

 private:
  struct Impl;
  explicit Simulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parses a fault from the admin API's JSON; unknown keys are errors.
StatusOr<Fault> parseFaultJson(const std::string& json);

}  // namespace greenlight::simulator
