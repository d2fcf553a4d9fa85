#include "greenlight/app/app_config.h"

namespace greenlight::app {
namespace {

std::optional<AppConfig> fromRoot(ConfigReader& r, const YAML::Node& root) {
  AppConfig c;
  if (root.IsNull()) {
    r.error(root, "", "the file is empty");
    return std::nullopt;
  }
  if (!r.expectMap(root, "", {"log", "admin", "probe_defaults", "probes"})) return std::nullopt;
  if (const YAML::Node log = root["log"]; log.IsDefined() && !log.IsNull()) {
    if (r.expectMap(log, "log", {"format", "level"})) {
      if (auto f = r.getString(log, "log", "format")) {
        if (*f == "text") c.log_format = LogFormat::kText;
        else if (*f == "json") c.log_format = LogFormat::kJson;
        else r.error(log["format"], "log.format", "expected text or json, got \"" + *f + "\"");
      }
      if (auto l = r.getString(log, "log", "level")) {
        static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
        bool ok = false;
        for (const char* k : kLevels) ok = ok || *l == k;
        if (!ok) r.error(log["level"], "log.level", "expected trace, debug, info, warn or error, got \"" + *l + "\"");
        else c.log_level = *l;
      }
    }
  }
  c.admin = parseAdminOptions(r, root["admin"], "admin");
  c.probes = probes::parseProbes(r, root);
  if (!r.errors().empty()) return std::nullopt;
  return c;
}

}  // namespace

std::optional<AppConfig> loadAppConfig(const std::string& path, ConfigErrors& errors,
                                       EnvLookup env) {
  ConfigReader r(path, errors, std::move(env));
  auto root = r.loadFile();
  if (!root) return std::nullopt;
  return fromRoot(r, *root);
}

std::optional<AppConfig> parseAppConfig(const std::string& name, const std::string& text,
                                        ConfigErrors& errors, EnvLookup env) {
  ConfigReader r(name, errors, std::move(env));
  auto root = r.loadString(text);
  if (!root) return std::nullopt;
  return fromRoot(r, *root);
}

}  // namespace greenlight::app
