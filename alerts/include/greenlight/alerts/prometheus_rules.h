// `greenlight export prometheus-rules`: the same rules as Prometheus alerting rules over the
// probe metrics, for teams that hand alerting to Prometheus + Alertmanager at scale.
// Event rules have no metric to watch and are left out (listed in a comment).
#pragma once

#include <string>
#include <vector>

#include "greenlight/alerts/rule.h"

namespace greenlight::alerts {

// A rule file (YAML) with one group, `greenlight`; evaluated every `interval`.
std::string exportPrometheusRules(const std::vector<RuleSpec>& rules, Duration interval);

// The PromQL expression of one rule (per burn-rate severity for burn_rate: index into the
// severities in order of first appearance).
std::string promqlFor(const RuleSpec& rule, const std::string& severity = "");

}  // namespace greenlight::alerts
