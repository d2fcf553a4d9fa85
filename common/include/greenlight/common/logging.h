// Process-wide logging setup on spdlog: human text or JSON lines (one object a line) on stderr.
// Never log a secret or a response body: log names, statuses and reasons.
#pragma once

#include <string>

#include "greenlight/common/config_reader.h"
#include "greenlight/common/status.h"

namespace greenlight {

enum class LogFormat { kText, kJson };

struct LogOptions {
  LogFormat format = LogFormat::kText;
  std::string level = "info";
};

// Reads a `log:` section ({format: text|json, level: trace|debug|info|warn|error}).
LogOptions parseLogOptions(ConfigReader& reader, const YAML::Node& node, const std::string& field);

// level: trace, debug, info, warn, error. Safe to call again (replaces the default logger).
Status initLogging(LogFormat format, const std::string& level);

}  // namespace greenlight
