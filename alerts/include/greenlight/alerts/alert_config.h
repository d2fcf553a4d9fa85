// The `alerting:` section of `greenlight run`'s config: rules, the route tree, receivers,
// inhibition and delivery settings. Every problem is reported with file:line:column and field.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "greenlight/alerts/dispatcher.h"
#include "greenlight/alerts/notifier.h"
#include "greenlight/alerts/outbox.h"
#include "greenlight/alerts/rule.h"
#include "greenlight/common/config_reader.h"
#include "greenlight/common/sealed.h"

namespace greenlight::alerts {

struct AlertingConfig {
  bool enabled = false;  // the section is present
  std::string external_url;
  std::string state_dir;  // outbox and alert state; empty: memory only (lost on restart)
  std::optional<AesKey> state_key;  // from the top-level state_encryption: seals both files
  Duration evaluation_interval{std::chrono::seconds(1)};
  bool watchdog = false;  // an always-firing `Watchdog` alert: a dead-man's switch
  RetryPolicy retry;
  std::vector<RuleSpec> rules;
  DispatcherConfig dispatch;
  std::vector<ReceiverSpec> receivers;
};

AlertingConfig parseAlertingConfig(ConfigReader& r, const YAML::Node& node, const std::string& field);

}  // namespace greenlight::alerts
