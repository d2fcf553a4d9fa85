// The I/O edge of the probe engine: start a request, get one callback when it ends.
// CurlTransport is the real one; tests of scheduling and flows may use a scripted one.
// Not thread-safe: used from the engine's loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "greenlight/common/time_source.h"
#include "greenlight/probes/probe_result.h"
#include "greenlight/probes/probe_spec.h"

namespace greenlight::probes {

struct TransportRequest {
  StepKind kind = StepKind::kHttp;  // kHttp, kTcp (connect only) or kTls (handshake only)
  std::string url;                  // URL, or host:port for kTcp/kTls
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool follow_redirects = true;
  int max_redirects = 10;
  HttpVersion http_version = HttpVersion::kHttp1_1;
  TlsSettings tls;
  Duration timeout{10'000'000'000};
  size_t max_body_bytes = 1 << 20;
  bool keep_body = false;     // only when a condition or capture needs it
  bool keep_headers = false;  // likewise
};

struct TransportResult {
  FailureReason error = FailureReason::kNone;  // transport-level failure, if any
  std::string error_message;
  bool connected = false;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // last response, names lower-case
  std::string body;
  bool body_truncated = false;
  PhaseTimings timings;
  Duration total{0};
  double http_version = 0;
  bool ssl = false;
  int redirects = 0;
  int64_t content_length = -1;
  int64_t body_length = 0;
  std::optional<WallTime> cert_earliest_expiry;
  std::string ip;
};

using RequestId = uint64_t;

class Transport {
 public:
  virtual ~Transport() = default;
  // `done` runs exactly once, later (never inside start), unless the request is cancelled.
  virtual RequestId start(TransportRequest request,
                          std::function<void(TransportResult)> done) = 0;
  virtual void cancel(RequestId id) = 0;
};

}  // namespace greenlight::probes
