#include "greenlight/common/time_format.h"

#include <cstdio>
#include <ctime>

namespace greenlight {

std::string formatRfc3339(WallTime t) {
  if (t == WallTime{}) return "0001-01-01T00:00:00Z";
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  const int frac = static_cast<int>(((ms % 1000) + 1000) % 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (frac != 0) {
    char f[8];
    std::snprintf(f, sizeof f, ".%03d", frac);
    out += f;
  }
  return out + "Z";
}

std::optional<WallTime> parseRfc3339(const std::string& s) {
  if (s == "0001-01-01T00:00:00Z") return WallTime{};
  std::tm tm{};
  int ms = 0;
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return std::nullopt;
  if (*rest == '.') {
    ++rest;
    int digits = 0;
    while (*rest >= '0' && *rest <= '9') {
      if (digits < 3) ms = ms * 10 + (*rest - '0');
      ++digits;
      ++rest;
    }
    for (; digits < 3; ++digits) ms *= 10;
  }
  if (std::string(rest) != "Z") return std::nullopt;
  return WallTime{} + std::chrono::seconds(timegm(&tm)) + std::chrono::milliseconds(ms);
}

}  // namespace greenlight
