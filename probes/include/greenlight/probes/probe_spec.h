// What a probe does, as read from config. Plain values; thread-compatible.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "greenlight/common/config_reader.h"
#include "greenlight/common/time_source.h"
#include "greenlight/probes/condition.h"
#include "greenlight/probes/health.h"

namespace greenlight::probes {

using namespace std::chrono_literals;

enum class StepKind { kHttp, kOAuth2, kTcp, kTls };
enum class HttpVersion { kHttp1_1, kHttp2 };

struct TlsSettings {
  bool insecure_skip_verify = false;  // verification is on unless a config turns it off
  std::string ca_file;
  std::string cert_file;  // client certificate (mTLS)
  std::string key_file;
  std::string server_name;  // SNI and name to verify, when it differs from the URL's host
  bool operator==(const TlsSettings&) const = default;
};

struct OAuth2Settings {
  std::string token_url;
  std::string client_id;
  std::string client_secret;
  std::vector<std::string> scopes;
  bool basic_auth = true;  // client credentials in an Authorization header (else in the body)
  Duration refresh_before{60s};
  std::string capture_as = "token";
  bool operator==(const OAuth2Settings&) const = default;
};

struct Capture {
  std::string name;
  std::string source;  // e.g. "[BODY].access_token"
  Operand operand;
};

struct StepSpec {
  std::string name;
  StepKind kind = StepKind::kHttp;
  std::string url;      // http(s)://… for kHttp; host:port for kTcp and kTls
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool follow_redirects = true;
  int max_redirects = 10;
  HttpVersion http_version = HttpVersion::kHttp1_1;
  size_t max_body_bytes = 1 << 20;
  OAuth2Settings oauth2;
  std::vector<Condition> conditions;  // empty: the defaults, see effectiveConditions()
  std::vector<Capture> captures;
};

// A step's conditions, or the defaults when it sets none: a 2xx status for HTTP (as
// blackbox_exporter), [CONNECTED] == true for TCP and TLS.
const std::vector<Condition>& effectiveConditions(const StepSpec& step);

struct RetryPolicy {
  int attempts = 1;  // 1 = no retry
  Duration backoff{200ms};
  Duration max_backoff{5s};
};

struct ProbeSpec {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // sorted by name
  Duration interval{30s};
  Duration timeout{10s};
  TlsSettings tls;
  HealthPolicy health;
  RetryPolicy retry;
  std::vector<StepSpec> steps;
  std::string source;  // "file:line" where it was defined, for messages
  // Differs when a scheduled probe must be restarted for this spec (anything but labels).
  uint64_t fingerprint() const;
};

// Parses `probe_defaults:` and `probes:` from a config root. Every error goes to the reader.
std::vector<ProbeSpec> parseProbes(ConfigReader& reader, const YAML::Node& root);

}  // namespace greenlight::probes
