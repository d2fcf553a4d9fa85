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

}  // namespace greenlight
