// Wall times on the wire and on disk: RFC 3339 in UTC for JSON APIs and payloads, Unix
// milliseconds for state files. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "greenlight/common/time_source.h"

namespace greenlight {

// "2026-11-26T10:00:00Z", with ".250" milliseconds when not zero; the zero time is
// "0001-01-01T00:00:00Z" (Alertmanager's "no end").
std::string formatRfc3339(WallTime t);
// The inverse (UTC, "Z" only); nullopt for anything else.
std::optional<WallTime> parseRfc3339(const std::string& s);

inline int64_t toUnixMillis(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline WallTime fromUnixMillis(int64_t ms) { return WallTime{} + std::chrono::milliseconds(ms); }

}  // namespace greenlight
