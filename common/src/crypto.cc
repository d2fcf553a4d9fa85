#include "greenlight/common/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdlib>

namespace greenlight {

Sha256Digest sha256(std::string_view data) {
  Sha256Digest out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

std::string toHex(const uint8_t* data, size_t size) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

bool sha256FromHex(std::string_view hex, Sha256Digest* out) {
  if (hex.size() != 64) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

bool constantTimeEqual(const Sha256Digest& a, const Sha256Digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string randomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) std::abort();
  return out;
}

Sha256Digest saltedSha256(std::string_view salt, std::string_view token) {
  std::string buf;
  buf.reserve(salt.size() + token.size());
  buf.append(salt);
  buf.append(token);
  const Sha256Digest d = sha256(buf);
  OPENSSL_cleanse(buf.data(), buf.size());
  return d;
}

std::string hashToken(std::string_view token) {
  const std::string salt = randomBytes(16);
  const Sha256Digest d = saltedSha256(salt, token);
  return "sha256:" + toHex(reinterpret_cast<const uint8_t*>(salt.data()), salt.size()) + ":" + toHex(d.data(), d.size());
}

bool parseTokenHash(std::string_view text, TokenHash* out) {
  static constexpr std::string_view kPrefix = "sha256:";
  if (text.substr(0, kPrefix.size()) != kPrefix) return false;
  text.remove_prefix(kPrefix.size());
  const size_t colon = text.find(':');
  if (colon != 32) return false;  // a 16-byte salt
  std::string salt;
  for (size_t i = 0; i < 32; i += 2) {
    const auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = nibble(text[i]), lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    salt.push_back(static_cast<char>(hi * 16 + lo));
  }
  Sha256Digest d;
  if (!sha256FromHex(text.substr(colon + 1), &d)) return false;
  out->salt = std::move(salt);
  out->digest = d;
  return true;
}

}  // namespace greenlight
