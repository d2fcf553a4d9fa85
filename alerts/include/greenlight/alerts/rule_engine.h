// Runs the alerting rules over observations as they arrive (event-driven: a probe result is
// evaluated the moment it lands) and on a tick (so `for`, windows ageing out and no-data are
// seen without new data). Owns the bounded windows of each series; emits an AlertUpdate when an
// instance fires or resolves.
// Not thread-safe (AlertEngine serialises every call).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "greenlight/alerts/rule.h"
#include "greenlight/signals/outcome_window.h"

namespace greenlight::alerts {

// One probe result as the rules see it.
struct Observation {
  Labels labels;            // the probe's labels plus `probe`
  bool ok = true;
  double latency_seconds = 0;
  std::optional<bool> unhealthy;  // the probe's health after this result (nullopt: unknown)
};

// A firing or resolved alert, as handed to the dispatcher.
struct AlertUpdate {
  Labels labels;
  Labels annotations;
  bool firing = true;
  WallTime starts_at{};
  WallTime ends_at{};
  double value = 0;
};

struct InstanceView {
  std::string rule;
  Labels labels;
  Labels annotations;
  Phase phase = Phase::kInactive;
  WallTime active_since{};
  WallTime starts_at{};
  double value = 0;
};

// What survives a restart: the firing instances (not the windows: no history is kept).
struct FiringRecord {
  std::string rule;
  Labels series;         // the series key (the probe's labels, or the rule's `by` labels)
  std::string severity;  // burn-rate instances; "" otherwise
  WallTime starts_at{};
  double value = 0;
};

class RuleEngine {
 public:
  using Sink = std::function<void(const AlertUpdate&)>;
  RuleEngine(const TimeSource& time, Sink sink);

  // Replaces the rules; instances of rules that keep their name and kind keep their state.
  void setRules(std::vector<RuleSpec> rules);
  void observe(const Observation& o);
  // An event another module raised (e.g. "rollout_rolled_back" with {service="checkout"}).
  void raise(const std::string& event, const Labels& labels, const Labels& annotations);
  // Re-evaluates every instance (for `for`, windows ageing, no data).
  void tick();
  // Instances restored as firing (from the state file) without notifying again.
  void restore(const std::vector<FiringRecord>& records);
  std::vector<FiringRecord> firing() const;
  std::vector<InstanceView> snapshot() const;
  size_t seriesCount() const;

 private:
  struct Instance {
    Labels labels;
    InstanceState state;
    Labels event_annotations;
  };
  struct Series {
    std::map<int64_t, std::unique_ptr<signals::OutcomeWindow>> windows;  // by span (ns)
    // probe_health: each member probe's (by fingerprint) known health and when it was last seen
    std::map<std::string, std::pair<bool, MonoTime>> unhealthy;
    MonoTime last_seen{};
    MonoTime event_at = MonoTime::min();
    Labels event_annotations;
    std::map<std::string, Instance> instances;  // by severity ("" for most kinds)
  };
  struct RuleState {
    RuleSpec spec;
    std::map<Labels, Series> series;
  };
  Series& seriesFor(RuleState& r, const Labels& key);
  signals::OutcomeWindow& windowOf(Series& s, Duration span, bool latency);
  void evaluate(RuleState& r, const Labels& key, Series& s, MonoTime now);
  void apply(RuleState& r, const Labels& key, Series& s, const std::string& severity, Condition cond, double value, MonoTime now);
  Labels instanceLabels(const RuleState& r, const Labels& key, const std::string& severity) const;

  const TimeSource& time_;
  Sink sink_;
  std::vector<std::unique_ptr<RuleState>> rules_;
};

}  // namespace greenlight::alerts
