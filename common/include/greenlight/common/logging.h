// Process-wide logging setup on spdlog: human text or JSON lines (one object a line) on stderr.
// Never log a secret or a response body: log names, statuses and reasons.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "greenlight/common/config_reader.h"
#include "greenlight/common/status.h"

namespace greenlight {

enum class LogFormat { kText, kJson };

struct LogOptions {
  LogFormat format = LogFormat::kText;
  std::string level = "info";
  std::vector<std::string> redact;  // field names redacted in every line, besides the defaults
};

// Field names whose values never reach a log line, whatever logs them: Authorization,
// access_token, refresh_token, id_token, client_secret, password, api_key, ...
const std::vector<std::string>& defaultRedactedFields();

// Replaces the value after each `field` (case-insensitive, as `field: v`, `field=v`,
// `"field": "v"`, `Authorization: Bearer v`) with [REDACTED]. Pure; for the log sink and tests.
std::string redactSecrets(std::string_view text, const std::vector<std::string>& fields);

// Reads a `log:` section ({format: text|json, level: trace|debug|info|warn|error, redact: [field]}).
LogOptions parseLogOptions(ConfigReader& reader, const YAML::Node& node, const std::string& field);

// level: trace, debug, info, warn, error. Safe to call again (replaces the default logger).
// Every line passes redactSecrets with the defaults plus `redact`.
Status initLogging(LogFormat format, const std::string& level, const std::vector<std::string>& redact = {});

}  // namespace greenlight
