#include "greenlight/common/admin_server.h"

namespace greenlight {

AdminServerOptions parseAdminOptions(ConfigReader& r, const YAML::Node& node,
                                     const std::string& field) {
  AdminServerOptions o;
  if (!node.IsDefined() || node.IsNull()) return o;
  if (!r.expectMap(node, field, {"listen", "tls", "tokens", "public_metrics"})) return o;
  if (auto listen = r.getString(node, field, "listen")) {
    auto colon = listen->rfind(':');
    int port = -1;
    if (colon != std::string::npos) {
      try {
        size_t used = 0;
        port = std::stoi(listen->substr(colon + 1), &used);
        if (used != listen->size() - colon - 1) port = -1;
      } catch (...) {
        port = -1;
      }
    }
    if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
      r.error(node["listen"], ConfigReader::join(field, "listen"),
              "expected host:port such as \"127.0.0.1:9470\", got \"" + *listen + "\"");
    } else {
      o.host = listen->substr(0, colon);
      if (o.host.size() > 2 && o.host.front() == '[') o.host = o.host.substr(1, o.host.size() - 2);
      o.port = port;
    }
  }
  const YAML::Node tls = node["tls"];
  if (tls.IsDefined() && !tls.IsNull()) {
    const std::string tf = ConfigReader::join(field, "tls");
    if (r.expectMap(tls, tf, {"cert_file", "key_file", "client_ca_file"})) {
      o.tls_cert_file = r.getString(tls, tf, "cert_file", true).value_or("");
      o.tls_key_file = r.getString(tls, tf, "key_file", true).value_or("");
      o.tls_client_ca_file = r.getString(tls, tf, "client_ca_file").value_or("");
    }
  }
  o.public_metrics = r.getBool(node, field, "public_metrics").value_or(false);
  const YAML::Node tokens = node["tokens"];
  const std::string tkf = ConfigReader::join(field, "tokens");
  if (tokens.IsDefined() && !tokens.IsNull() && r.expectSequence(tokens, tkf)) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string f = ConfigReader::index(tkf, i);
      const YAML::Node t = tokens[i];
      if (!r.expectMap(t, f, {"name", "role", "token", "token_hash", "token_sha256"})) continue;
      AdminToken tok;
      tok.name = r.getString(t, f, "name", true).value_or("");
      auto role = r.getString(t, f, "role", true);
      if (role) {
        if (*role == "viewer") tok.role = Role::kViewer;
        else if (*role == "operator") tok.role = Role::kOperator;
        else if (*role == "admin") tok.role = Role::kAdmin;
        else r.error(t["role"], ConfigReader::join(f, "role"),
                     "expected viewer, operator or admin, got \"" + *role + "\"");
      }
      const int given = int(t["token"].IsDefined()) + int(t["token_hash"].IsDefined()) + int(t["token_sha256"].IsDefined());
      if (given != 1) {
        r.error(t, f, "give exactly one of token_hash (from `greenlight token hash`), token (e.g. \"${GREENLIGHT_TOKEN}\") "
                      "or token_sha256");
        continue;
      }
      if (t["token"].IsDefined()) {
        auto secret = r.getString(t, f, "token", true);
        if (secret && secret->size() < 16) {
          r.error(t["token"], ConfigReader::join(f, "token"),
                  "a token must be at least 16 characters long");
        } else if (secret) {
          // Kept only salted, even in memory.
          tok.salt = randomBytes(16);
          tok.digest = saltedSha256(tok.salt, *secret);
        }
      } else if (t["token_hash"].IsDefined()) {
        if (auto text = r.getString(t, f, "token_hash", true)) {
          TokenHash h;
          if (!parseTokenHash(*text, &h)) {
            r.error(t["token_hash"], ConfigReader::join(f, "token_hash"),
                    "expected sha256:SALT:HASH (32 and 64 hex digits), as `greenlight token hash` prints");
          } else {
            tok.salt = h.salt;
            tok.digest = h.digest;
          }
        }
      } else if (auto hex = r.getString(t, f, "token_sha256", true)) {
        // Unsalted, kept for configs written before token_hash; `greenlight token hash` is better.
        if (!sha256FromHex(*hex, &tok.digest)) {
          r.error(t["token_sha256"], ConfigReader::join(f, "token_sha256"),
                  "expected 64 hex digits (sha256sum of the token)");
        }
      }
      o.tokens.push_back(tok);
    }
  }
  return o;
}

}  // namespace greenlight
