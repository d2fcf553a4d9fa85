// Generates a private CA and server certificates with OpenSSL, for the simulator's HTTPS
// endpoints and for tests. Keys are EC P-256. Thread-safe.
#pragma once

#include <string>

#include "greenlight/common/status.h"
#include "greenlight/common/time_source.h"

namespace greenlight::simulator {

struct CertFiles {
  std::string cert_file;
  std::string key_file;
};

class CertAuthority {
 public:
  // Creates a CA and writes its certificate to dir/ca.pem.
  static StatusOr<CertAuthority> create(const std::string& dir, const std::string& name);
  CertAuthority(CertAuthority&&) noexcept;
  CertAuthority& operator=(CertAuthority&&) noexcept;
  ~CertAuthority();

  const std::string& caFile() const { return ca_file_; }
  // A server certificate for localhost and 127.0.0.1, valid from not_before_offset (from now,
  // usually negative) for `validity`. Written to dir/<name>.pem and dir/<name>-key.pem (0600).
  StatusOr<CertFiles> issue(const std::string& name, Duration not_before_offset,
                            Duration validity) const;

 private:
  CertAuthority() = default;
  struct Impl;
  Impl* impl_ = nullptr;
  std::string dir_;
  std::string ca_file_;
};

}  // namespace greenlight::simulator
