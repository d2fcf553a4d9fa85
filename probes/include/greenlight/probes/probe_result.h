// What one probe run observed. A failed probe is a ProbeResult, not an error.
// Plain value types; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "greenlight/common/time_source.h"

namespace greenlight::probes {

// Why a run failed; the `reason` label of greenlight_probe_failures_total.
enum class FailureReason {
  kNone,
  kDns,          // name did not resolve
  kConnect,      // TCP connect refused or unreachable
  kTls,          // handshake failed, certificate untrusted or expired
  kTimeout,      // no complete answer within the probe's timeout
  kConnection,   // connection reset or closed mid-response
  kHttp,         // protocol error: malformed response, too many redirects
  kStatus,       // a [STATUS] condition failed
  kLatency,      // a [RESPONSE_TIME] condition failed
  kCertificate,  // a [CERTIFICATE_EXPIRATION] condition failed
  kInvalidBody,  // a body condition needed JSON and the body was not JSON
  kCondition,    // any other condition failed
  kCapture,      // a value a later step needs could not be captured
  kCount,
};
const char* reasonName(FailureReason r);

struct PhaseTimings {
  Duration resolve{0};
  Duration connect{0};
  Duration tls{0};
  Duration processing{0};  // request sent -> first byte
  Duration transfer{0};    // first byte -> end
};

struct ConditionOutcome {
  std::string condition;
  bool passed = false;
  std::string actual;  // the value seen, e.g. "503" or "<missing>"
  std::string error;   // why it could not be evaluated, if so
};

struct StepResult {
  std::string name;
  bool success = false;
  FailureReason reason = FailureReason::kNone;
  std::string message;
  bool from_cache = false;  // an OAuth2 token reused from the cache: no request made
  bool connected = false;
  int status = 0;
  Duration duration{0};
  PhaseTimings timings;
  double http_version = 0;
  bool ssl = false;
  int redirects = 0;
  int64_t content_length = -1;
  int64_t body_length = 0;
  std::optional<WallTime> cert_earliest_expiry;
  std::string ip;
  std::vector<ConditionOutcome> conditions;
};

struct ProbeResult {
  std::string probe;
  bool success = false;
  FailureReason reason = FailureReason::kNone;
  std::string message;  // first failure, readable: "step odometer: [STATUS] == 200 (got 503)"
  WallTime started_at;
  Duration duration{0};
  int attempts = 0;
  std::vector<StepResult> steps;
};

}  // namespace greenlight::probes
