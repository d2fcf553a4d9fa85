// The whole config file of `greenlight run`: top-level sections, each read by its module.
// Unknown keys anywhere are errors. Thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "greenlight/alerts/alert_config.h"
#include "greenlight/common/admin_server.h"
#include "greenlight/controller/controller_config.h"
#include "greenlight/common/config_reader.h"
#include "greenlight/common/logging.h"
#include "greenlight/probes/probe_spec.h"

namespace greenlight::app {

struct AppConfig {
  LogFormat log_format = LogFormat::kText;
  std::string log_level = "info";
  std::vector<std::string> log_redact;  // log.redact: more field names kept out of log lines
  AdminServerOptions admin;
  std::vector<probes::ProbeSpec> probes;
  alerts::AlertingConfig alerting;
  controller::ControllerConfig rollouts;
};

// Reads and checks the file; on any problem returns nullopt and fills `errors` with all of them.
std::optional<AppConfig> loadAppConfig(const std::string& path, ConfigErrors& errors,
                                       EnvLookup env = processEnv());
std::optional<AppConfig> parseAppConfig(const std::string& name, const std::string& text,
                                        ConfigErrors& errors, EnvLookup env = processEnv());

}  // namespace greenlight::app
