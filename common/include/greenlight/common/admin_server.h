// The admin HTTP(S) server: /metrics, /healthz, /readyz and the JSON API of every component.
// Bearer tokens carry a role (viewer < operator < admin); each route names the least role it
// needs. With TLS the certificate can be replaced while running (reload) and client
// certificates can be required (mTLS).
// Tokens are compared by SHA-256 digest in constant time. Without tokens the server refuses to
// bind anything but loopback. Thread-safe; handlers run on the server's worker threads.
#pragma once

#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "greenlight/common/config_reader.h"
#include "greenlight/common/auth_throttle.h"
#include "greenlight/common/crypto.h"
#include "greenlight/common/exposition.h"
#include "greenlight/common/status.h"

namespace greenlight {

// viewer reads; operator acts on rollouts and silences; admin also reloads the config.
enum class Role { kNone = 0, kViewer = 1, kOperator = 2, kAdmin = 3 };
const char* roleName(Role r);

struct AdminToken {
  std::string name;  // who: shows in logs and the audit trail, never the token itself
  Role role = Role::kViewer;
  std::string salt;  // raw bytes; digest = SHA-256(salt || token)
  Sha256Digest digest{};
};

struct AdminServerOptions {
  std::string host = "127.0.0.1";
  int port = 9470;  // 0 picks a free port (tests)
  std::string tls_cert_file;
  std::string tls_key_file;
  // With TLS: clients must present a certificate that chains to this CA (mTLS), on top of the
  // token their role comes from.
  std::string tls_client_ca_file;
  std::vector<AdminToken> tokens;
  bool public_metrics = false;  // let Prometheus scrape /metrics without a token
  // Wrong tokens from one address: after 10 in a minute it gets 429 for 5 minutes.
  AuthThrottlePolicy auth_throttle;
  const TimeSource* time = nullptr;  // for the throttle; null: the real clock
};

// Parses the `admin:` section. Errors go to the reader.
AdminServerOptions parseAdminOptions(ConfigReader& reader, const YAML::Node& node,
                                     const std::string& field);

struct AdminRequest {
  std::string method;
  std::string path;
  std::vector<std::string> matches;  // regex captures of the route pattern, [0] = whole path
  std::multimap<std::string, std::string> params;
  std::string body;
  std::string principal;  // token name, or "anonymous"
  std::string client_certificate;  // subject of the verified client certificate (mTLS), or ""
  Role role = Role::kNone;
};

struct AdminResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
  // When set, the body is sent in chunks: each call appends the next piece and returns false
  // after the last one (large responses, e.g. /metrics of 10,000 probes).
  std::function<bool(std::string&)> stream;
};

AdminResponse jsonResponse(int status, const std::string& json_body);
AdminResponse errorResponse(int status, const std::string& message);

using AdminHandler = std::function<AdminResponse(const AdminRequest&)>;

class AdminServer {
 public:
  static StatusOr<std::unique_ptr<AdminServer>> create(AdminServerOptions options);
  ~AdminServer();

  // Registers a route before start(). `pattern` is a regex over the path.
  void handle(const std::string& method, const std::string& pattern, Role least_role,
              AdminHandler handler);
  void addCollectable(std::shared_ptr<prometheus::Collectable> source);
  // A source that writes its own exposition text in pieces (see ExpositionSource).
  void addExpositionSource(std::shared_ptr<const ExpositionSource> source);
  void setReady(bool ready);

  Status start();
  void stop();
  // Applies a changed `admin:` section while running: tokens, public_metrics and the TLS
  // certificate, key and client CA (new files or the same files re-read). All or nothing: on
  // error (unreadable certificate, no tokens on a non-loopback address, TLS turned on or off)
  // nothing changes. The listen address is not looked at: it changes at a restart.
  Status reload(const AdminServerOptions& options);
  // The checks of reload() without applying anything (a config reload validates every section
  // before it changes any).
  Status checkReload(const AdminServerOptions& options) const;
  int port() const { return port_; }
  bool tls() const;

 private:
  struct Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace greenlight
