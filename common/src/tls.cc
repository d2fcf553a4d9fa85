#include "greenlight/common/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>

namespace greenlight {

namespace {

std::string opensslError() {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return std::strerror(errno);
  const char* reason = ERR_reason_error_string(e);
  return reason ? reason : "OpenSSL error " + std::to_string(e);
}

std::string nameOf(const X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

// A key file protected by a passphrase is refused rather than prompting on a terminal.
int noPassphrase(char*, int, int, void*) { return 0; }

}  // namespace

struct ServerTls::Material {
  X509* leaf = nullptr;
  STACK_OF(X509)* chain = nullptr;
  EVP_PKEY* key = nullptr;
  X509_STORE* client_ca = nullptr;
  STACK_OF(X509_NAME)* client_ca_names = nullptr;
  std::string description;
  ~Material() {
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    X509_STORE_free(client_ca);
    sk_X509_NAME_pop_free(client_ca_names, X509_NAME_free);
  }
};

StatusOr<std::shared_ptr<ServerTls>> ServerTls::load(const TlsFiles& files) {
  auto tls = std::shared_ptr<ServerTls>(new ServerTls());
  if (Status s = tls->reload(files); !s.ok()) return s;
  return tls;
}

ServerTls::~ServerTls() = default;

Status ServerTls::reload(const TlsFiles& f) {
  const std::string where = f.field.empty() ? "tls" : f.field;
  if (f.cert_file.empty() || f.key_file.empty()) {
    return InvalidArgument(where + ": cert_file and key_file are both required");
  }
  auto m = std::make_shared<Material>();
  auto open = [&](const std::string& field, const std::string& path, BIO** bio) -> Status {
    *bio = BIO_new_file(path.c_str(), "r");
    if (!*bio) return InvalidArgument(where + "." + field + ": cannot read " + path + ": " + opensslError());
    return Status::Ok();
  };
  BIO* bio = nullptr;
  if (Status s = open("cert_file", f.cert_file, &bio); !s.ok()) return s;
  m->leaf = PEM_read_bio_X509_AUX(bio, nullptr, noPassphrase, nullptr);
  if (m->leaf) {
    m->chain = sk_X509_new_null();
    while (X509* extra = PEM_read_bio_X509(bio, nullptr, noPassphrase, nullptr)) sk_X509_push(m->chain, extra);
    ERR_clear_error();  // the end of the file reads as an error
  }
  BIO_free(bio);
  if (!m->leaf) return InvalidArgument(where + ".cert_file: " + f.cert_file + " holds no PEM certificate: " + opensslError());
  if (Status s = open("key_file", f.key_file, &bio); !s.ok()) return s;
  m->key = PEM_read_bio_PrivateKey(bio, nullptr, noPassphrase, nullptr);
  BIO_free(bio);
  if (!m->key) {
    return InvalidArgument(where + ".key_file: " + f.key_file + " holds no unencrypted PEM private key: " + opensslError());
  }
  if (X509_check_private_key(m->leaf, m->key) != 1) {
    ERR_clear_error();
    return InvalidArgument(where + ".key_file: " + f.key_file + " is not the key of " + f.cert_file);
  }
  if (!f.client_ca_file.empty()) {
    m->client_ca = X509_STORE_new();
    if (X509_STORE_load_file(m->client_ca, f.client_ca_file.c_str()) != 1) {
      return InvalidArgument(where + ".client_ca_file: cannot read CA certificates from " + f.client_ca_file + ": " +
                             opensslError());
    }
    m->client_ca_names = SSL_load_client_CA_file(f.client_ca_file.c_str());
    if (!m->client_ca_names || sk_X509_NAME_num(m->client_ca_names) == 0) {
      return InvalidArgument(where + ".client_ca_file: " + f.client_ca_file + " holds no PEM certificate");
    }
  }
  BIO* out = BIO_new(BIO_s_mem());
  ASN1_TIME_print(out, X509_get0_notAfter(m->leaf));
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  m->description = nameOf(X509_get_subject_name(m->leaf)) + " until " + std::string(data, static_cast<size_t>(n)) +
                   (m->client_ca ? ", client certificates required" : "");
  BIO_free(out);
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(m);
  return Status::Ok();
}

int ServerTls::onHandshake(SSL* ssl, void* arg) {
  auto* self = static_cast<ServerTls*>(arg);
  std::shared_ptr<const Material> m;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    m = self->current_;
  }
  if (SSL_use_certificate(ssl, m->leaf) != 1 || SSL_use_PrivateKey(ssl, m->key) != 1 ||
      SSL_set1_chain(ssl, m->chain) != 1) {
    return 0;
  }
  if (m->client_ca) {
    SSL_set1_verify_cert_store(ssl, m->client_ca);
    SSL_set_client_CA_list(ssl, SSL_dup_CA_list(m->client_ca_names));
    SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } else {
    SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
  }
  return 1;
}

void ServerTls::apply(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Resumed sessions must belong to this server (and, with mTLS, carry the verified client).
  static const unsigned char kContext[] = "greenlight";
  SSL_CTX_set_session_id_context(ctx, kContext, sizeof kContext - 1);
  SSL_CTX_set_cert_cb(ctx, &ServerTls::onHandshake, this);
}

bool ServerTls::requiresClientCertificate() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_->client_ca != nullptr;
}

std::string ServerTls::describe() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_->description;
}

std::string peerCertificateSubject(const SSL* ssl) {
  if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK) return "";
  X509* peer = SSL_get0_peer_certificate(ssl);
  return peer ? nameOf(X509_get_subject_name(peer)) : "";
}

}  // namespace greenlight
