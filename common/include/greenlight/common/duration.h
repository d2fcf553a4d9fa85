// Durations as people write them in config: "500ms", "30s", "5m", "1h30m", "72h", "7d".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "greenlight/common/time_source.h"

namespace greenlight {

// Returns nullopt for anything else (including a bare number, which is ambiguous).
std::optional<Duration> parseDuration(std::string_view text);
// The shortest form that parses back to the same value, e.g. "1m30s", "250ms".
std::string formatDuration(Duration d);

}  // namespace greenlight
