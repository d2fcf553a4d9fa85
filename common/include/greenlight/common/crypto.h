// Small crypto helpers on OpenSSL. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace greenlight {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(std::string_view data);
std::string toHex(const uint8_t* data, size_t size);
// Parses 64 hex digits; false on anything else.
bool sha256FromHex(std::string_view hex, Sha256Digest* out);
// Compares without an early exit (no timing leak of where they differ).
bool constantTimeEqual(const Sha256Digest& a, const Sha256Digest& b);
std::string randomBytes(size_t n);

// Salted token hashes for configs: "sha256:SALT:HASH" (hex), HASH = SHA-256(salt || token), a
// fresh 16-byte salt each time. Tokens are long and random, so one SHA-256 is enough to make
// the config useless for logging in; the salt makes equal tokens hash differently and rules
// out precomputed tables.
std::string hashToken(std::string_view token);
struct TokenHash {
  std::string salt;  // raw bytes
  Sha256Digest digest{};
};
// Parses "sha256:SALT:HASH"; nullopt-like false on anything else.
bool parseTokenHash(std::string_view text, TokenHash* out);
Sha256Digest saltedSha256(std::string_view salt, std::string_view token);

}  // namespace greenlight
