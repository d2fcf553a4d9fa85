// Alerting rules: what turns observations into alert instances, and the pure state machine
// each instance follows (inactive -> pending -> firing -> resolved).
// Plain values; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "greenlight/alerts/labels.h"
#include "greenlight/common/time_source.h"

namespace greenlight::alerts {

enum class RuleKind {
  kProbeHealth,   // a probe's health (thresholds of the probe) is unhealthy
  kFailureRatio,  // failed / total over `window` > threshold
  kLatency,       // latency quantile over `window` > threshold (seconds)
  kBurnRate,      // SLO error budget burning: multiwindow pairs
  kEvent,         // raised by another module (e.g. the controller's "rollout rolled back")
};
const char* ruleKindName(RuleKind k);

// What an instance does when its window holds fewer than `min_samples` observations.
enum class NoDataPolicy { kKeep, kResolve, kAlert };

struct BurnWindow {
  Duration long_window;
  Duration short_window;
  double factor = 1;       // burn rate: error ratio / (1 - objective)
  std::string severity;    // the `severity` label of the instance this pair raises
};
// The SRE Workbook's table for a 30-day budget.
std::vector<BurnWindow> defaultBurnWindows();

struct RuleSpec {
  std::string name;  // the `alertname` label
  RuleKind kind = RuleKind::kProbeHealth;
  std::vector<Matcher> matchers;   // which probes (by their labels, `probe` included)
  std::vector<std::string> by;     // fan-out: one instance per distinct value set; empty: per probe
  Duration window{std::chrono::minutes(5)};
  double threshold = 0;            // ratio (0..1) or latency seconds
  double quantile = 0.99;
  double objective = 0.999;        // burn rate
  std::vector<BurnWindow> burn_windows;
  std::string event;               // for kEvent
  Duration for_duration{0};
  Duration keep_firing_for{0};
  int min_samples = 1;
  // probe_health with `by`: fire when at least this many probes of a group are unhealthy
  // (e.g. by: [oem] and 2 locations probing it: "failing from at least 2 locations").
  int quorum = 1;
  NoDataPolicy no_data = NoDataPolicy::kKeep;
  Labels labels;                   // added to every instance
  Labels annotations;              // templates: {{ $labels.NAME }}, {{ $value }}
  // The longest window the rule reads (what its observations must be kept for).
  Duration longestWindow() const;
};

// What a rule decided about one instance at one evaluation.
enum class Condition { kFalse, kTrue, kNoData };

enum class Phase { kInactive, kPending, kFiring };
const char* phaseName(Phase p);

struct InstanceState {
  Phase phase = Phase::kInactive;
  MonoTime active_since{};     // first evaluation of the current active spell
  MonoTime last_true{};        // last evaluation where the condition held (keep_firing_for)
  WallTime starts_at{};        // wall time the instance started firing (Alertmanager startsAt)
  WallTime ends_at{};          // set when resolved
  double value = 0;
};

enum class Transition { kNone, kBecamePending, kFired, kResolved, kPendingCleared };

struct Step {
  InstanceState next;
  Transition transition = Transition::kNone;
};

// The pure state machine of one instance: `for` delays firing, `keep_firing_for` delays
// resolving, no data follows the rule's policy.
Step evaluateInstance(const RuleSpec& rule, const InstanceState& prev, Condition cond, double value,
                      MonoTime now, WallTime wall_now);

// Expands {{ $labels.NAME }} and {{ $value }} in a template.
std::string expandTemplate(const std::string& text, const Labels& labels, double value, bool no_data);
// Checks a template's syntax; empty when fine, else what is wrong.
std::string checkTemplate(const std::string& text);

}  // namespace greenlight::alerts
