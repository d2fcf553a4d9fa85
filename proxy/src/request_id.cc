#include "request_id.h"

#include <boost/beast/core/string.hpp>

#include <array>
#include <cctype>
#include <cstdint>
#include <random>

namespace greenlight::proxy {
namespace {

// splitmix64: two 64-bit outputs per id, a few instructions each, seeded once per thread.
struct IdGenerator {
  uint64_t state;
  IdGenerator() {
    std::random_device os;
    state = (uint64_t{os()} << 32) ^ os();
  }
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

}  // namespace

void newRequestId(char (&out)[kRequestIdLength]) {
  thread_local IdGenerator generator;
  uint64_t hi = generator.next(), lo = generator.next();
  hi = (hi & ~uint64_t{0xf000}) | 0x4000;                             // version 4
  lo = (lo & ~(uint64_t{0xc} << 60)) | (uint64_t{0x8} << 60);          // variant 10
  static constexpr char kHex[] = "0123456789abcdef";
  size_t at = 0;
  auto put = [&](uint64_t v, int from_nibble, int nibbles) {
    for (int i = 0; i < nibbles; ++i) out[at++] = kHex[(v >> (4 * (from_nibble - i))) & 0xf];
  };
  put(hi, 15, 8);
  out[at++] = '-';
  put(hi, 7, 4);
  out[at++] = '-';
  put(hi, 3, 4);
  out[at++] = '-';
  put(lo, 15, 4);
  out[at++] = '-';
  put(lo, 11, 12);
}

bool usableRequestIdHeader(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) == std::string_view::npos) return false;
  }
  static constexpr std::array<std::string_view, 18> kManaged = {
      "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te", "trailer",
      "upgrade", "expect", "via", "x-forwarded-for", "x-forwarded-proto", "forwarded", "cookie", "set-cookie",
      "authorization", "proxy-authorization"};
  for (std::string_view m : kManaged) {
    if (boost::beast::iequals({name.data(), name.size()}, {m.data(), m.size()})) return false;
  }
  return true;
}

}  // namespace greenlight::proxy
