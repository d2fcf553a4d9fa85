#include "greenlight/simulator/cert_gen.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>

namespace greenlight::simulator {
namespace {

EVP_PKEY* newKey() { return EVP_EC_gen("P-256"); }

bool addExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) return false;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return true;
}

void setSerial(X509* cert) {
  unsigned char bytes[16];
  RAND_bytes(bytes, sizeof bytes);
  bytes[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(bytes, sizeof bytes, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
}

Status writePem(const std::string& path, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return Unavailable("cannot write " + path);
  if (key) chmod(path.c_str(), 0600);
  bool ok = cert ? PEM_write_X509(f, cert) : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  return ok ? Status::Ok() : Internal("cannot encode " + path);
}

long seconds(Duration d) { return static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(d).count()); }

}  // namespace

struct CertAuthority::Impl {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  ~Impl() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

CertAuthority::CertAuthority(CertAuthority&& o) noexcept
    : impl_(o.impl_), dir_(std::move(o.dir_)), ca_file_(std::move(o.ca_file_)) {
  o.impl_ = nullptr;
}
CertAuthority& CertAuthority::operator=(CertAuthority&& o) noexcept {
  std::swap(impl_, o.impl_);
  dir_ = std::move(o.dir_);
  ca_file_ = std::move(o.ca_file_);
  return *this;
}
CertAuthority::~CertAuthority() { delete impl_; }

StatusOr<CertAuthority> CertAuthority::create(const std::string& dir, const std::string& name) {
  CertAuthority ca;
  ca.impl_ = new Impl;
  ca.dir_ = dir;
  ca.impl_->key = newKey();
  X509* c = ca.impl_->cert = X509_new();
  if (!ca.impl_->key || !c) return Internal("cannot create CA key");
  X509_set_version(c, 2);
  setSerial(c);
  X509_gmtime_adj(X509_getm_notBefore(c), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c), 10L * 365 * 86400);
  X509_set_pubkey(c, ca.impl_->key);
  X509_NAME* n = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(c, n);
  addExt(c, c, NID_basic_constraints, "critical,CA:TRUE");
  addExt(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
  addExt(c, c, NID_subject_key_identifier, "hash");
  if (!X509_sign(c, ca.impl_->key, EVP_sha256())) return Internal("cannot sign CA certificate");
  ca.ca_file_ = dir + "/ca.pem";
  if (Status s = writePem(ca.ca_file_, c, nullptr); !s.ok()) return s;
  return ca;
}

StatusOr<CertFiles> CertAuthority::issue(const std::string& name, Duration not_before_offset,
                                         Duration validity) const {
  EVP_PKEY* key = newKey();
  X509* c = X509_new();
  X509_set_version(c, 2);
  setSerial(c);
  X509_gmtime_adj(X509_getm_notBefore(c), seconds(not_before_offset));
  X509_gmtime_adj(X509_getm_notAfter(c), seconds(not_before_offset + validity));
  X509_set_pubkey(c, key);
  X509_NAME* n = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(c, X509_get_subject_name(impl_->cert));
  addExt(c, impl_->cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  addExt(c, impl_->cert, NID_basic_constraints, "critical,CA:FALSE");
  addExt(c, impl_->cert, NID_ext_key_usage, "serverAuth,clientAuth");
  addExt(c, impl_->cert, NID_authority_key_identifier, "keyid:always");
  CertFiles files{dir_ + "/" + name + ".pem", dir_ + "/" + name + "-key.pem"};
  Status s = X509_sign(c, impl_->key, EVP_sha256()) ? Status::Ok() : Internal("cannot sign certificate");
  if (s.ok()) s = writePem(files.cert_file, c, nullptr);
  if (s.ok()) s = writePem(files.key_file, nullptr, key);
  X509_free(c);
  EVP_PKEY_free(key);
  if (!s.ok()) return s;
  return files;
}

}  // namespace greenlight::simulator
