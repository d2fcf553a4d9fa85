// Server-side TLS shared by every listener (admin API, proxy listeners): TLS 1.2 or newer with
// forward-secret AEAD ciphers, a certificate that can be replaced while the server runs, and
// optional client-certificate authentication (mTLS) against a CA file.
//
// The certificate, key and client CA live in a ServerTls; an SSL_CTX configured by apply() asks
// it for them at every handshake, so reload() changes what the next handshake presents (and
// which client certificates it accepts) without touching connections already open. A reload
// that fails (a missing file, a key that does not match) keeps the old certificate. Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "greenlight/common/status.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace greenlight {

struct TlsFiles {
  std::string cert_file;       // PEM: the certificate, then its chain
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // PEM CA(s) client certificates must chain to; empty: no mTLS
  // Where these came from, for error messages (e.g. "admin.tls").
  std::string field = "tls";
  // Any file named: the listener serves HTTPS (load() then says which one is missing).
  bool any() const { return !cert_file.empty() || !key_file.empty() || !client_ca_file.empty(); }
};

class ServerTls {
 public:
  // Reads the files; errors name the field and the file.
  static StatusOr<std::shared_ptr<ServerTls>> load(const TlsFiles& files);
  ~ServerTls();

  // Reads `files` again (the same or new paths) and, if all of them are good, serves them from
  // the next handshake on. On error nothing changes.
  Status reload(const TlsFiles& files);

  // Configures `ctx` for a server: protocol floor, ciphers, and a per-handshake callback that
  // presents the current certificate and, with a client CA, requires a client certificate.
  // This ServerTls must outlive every SSL_CTX it was applied to.
  void apply(SSL_CTX* ctx);

  bool requiresClientCertificate() const;
  // The current certificate's subject and expiry, for logs ("CN=... until 2027-01-01").
  std::string describe() const;

 private:
  struct Material;
  ServerTls() = default;
  static int onHandshake(SSL* ssl, void* self);
  mutable std::mutex mu_;
  std::shared_ptr<const Material> current_;
};

// The subject of the client certificate a connection presented and that verified ("CN=ops,
// O=..."), or "" when there is none.
std::string peerCertificateSubject(const SSL* ssl);

}  // namespace greenlight
