#include "greenlight/app/app_config.h"

#include <set>

#include "greenlight/common/sealed.h"

namespace greenlight::app {
namespace {

// rollouts.services[].analysis.probes name probes of the `probes:` section.
void checkAnalysisProbes(ConfigReader& r, const YAML::Node& root, const std::vector<probes::ProbeSpec>& specs) {
  const YAML::Node& rollouts = root["rollouts"];
  if (!rollouts.IsDefined() || !rollouts.IsMap() || !rollouts["services"].IsDefined()) return;
  const YAML::Node& services = rollouts["services"];
  if (!services.IsSequence()) return;
  std::set<std::string> known;
  for (const auto& p : specs) known.insert(p.name);
  for (size_t i = 0; i < services.size(); ++i) {
    const YAML::Node& service = services[i];
    if (!service.IsMap() || !service["analysis"].IsDefined() || !service["analysis"].IsMap()) continue;
    const YAML::Node& names = service["analysis"]["probes"];
    if (!names.IsDefined() || !names.IsSequence()) continue;
    for (size_t j = 0; j < names.size(); ++j) {
      if (!names[j].IsScalar() || known.count(names[j].Scalar())) continue;
      const std::string field = ConfigReader::index(ConfigReader::join(ConfigReader::index("rollouts.services", i), "analysis.probes"), j);
      r.error(names[j], field, "no probe named \"" + names[j].Scalar() + "\" in the probes section");
    }
  }
}

std::optional<AppConfig> fromRoot(ConfigReader& r, const YAML::Node& root) {
  AppConfig c;
  if (root.IsNull()) {
    r.error(root, "", "the file is empty");
    return std::nullopt;
  }
  if (!r.expectMap(root, "", {"secrets", "state_encryption", "log", "admin", "probe_defaults", "probes", "alerting", "rollouts"})) {
    return std::nullopt;
  }
  loadSecretsSection(r, root["secrets"], "secrets");  // first: ${secret:NAME} may appear anywhere below
  const auto state_key = parseStateEncryption(r, root["state_encryption"], "state_encryption");
  const LogOptions log = parseLogOptions(r, root["log"], "log");
  c.log_format = log.format;
  c.log_level = log.level;
  c.log_redact = log.redact;
  c.admin = parseAdminOptions(r, root["admin"], "admin");
  c.probes = probes::parseProbes(r, root);
  c.alerting = alerts::parseAlertingConfig(r, root["alerting"], "alerting");
  c.rollouts = controller::parseControllerConfig(r, root["rollouts"], "rollouts");
  checkAnalysisProbes(r, root, c.probes);
  c.alerting.state_key = state_key;
  c.rollouts.state_key = state_key;
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
