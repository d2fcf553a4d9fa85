// The notification pipeline between rules and receivers, with Alertmanager's semantics: a route
// tree with matchers and `continue`, aggregation groups (`group_by`, `group_wait`,
// `group_interval`, `repeat_interval`), silences and inhibition. Emits Notifications; delivery is
// someone else's job (the outbox).
// Additions to Alertmanager: `resolve_immediately` sends "resolved" as soon as every alert of a
// group has resolved instead of at the next group interval; `report_short_alerts` reports an
// alert that fired and resolved inside `group_wait` instead of dropping it.
// Timers come from the injected Scheduler. Not thread-safe: one thread (the alert loop).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "greenlight/alerts/labels.h"
#include "greenlight/alerts/rule_engine.h"
#include "greenlight/common/scheduler.h"

namespace greenlight::alerts {

struct RouteSpec {
  std::string receiver;  // empty: the parent's
  std::vector<Matcher> matchers;
  bool continue_matching = false;
  std::optional<std::vector<std::string>> group_by;  // ["..."]: every label
  std::optional<Duration> group_wait, group_interval, repeat_interval;
  std::optional<bool> resolve_immediately;
  std::vector<RouteSpec> routes;
};

struct InhibitRule {
  std::vector<Matcher> source_matchers;
  std::vector<Matcher> target_matchers;
  std::vector<std::string> equal;
};

struct Silence {
  std::string id;
  std::vector<Matcher> matchers;
  WallTime starts_at{};
  WallTime ends_at{};
  std::string created_by;
  std::string comment;
  bool activeAt(WallTime t) const { return starts_at <= t && t < ends_at; }
};

struct DispatcherConfig {
  RouteSpec root;  // root.receiver is required; the root matches everything
  std::vector<InhibitRule> inhibit_rules;
  bool report_short_alerts = true;
  // Receivers that must hear about a firing alert at least this often (an Alertmanager
  // forgets an alert after its resolve_timeout): caps group_interval and repeat_interval. They
  // also keep hearing about a resolved alert for `resend_resolved_for`, as Prometheus does, so
  // the resolution survives an Alertmanager restart.
  std::map<std::string, Duration> resend;
  Duration resend_resolved_for{std::chrono::minutes(15)};
};

struct Alert {
  Labels labels;
  Labels annotations;
  bool firing = true;
  WallTime starts_at{};
  WallTime ends_at{};
  std::string fingerprint;
};

struct Notification {
  std::string receiver;
  std::string group_key;  // Alertmanager's form: {}/{severity="page"}:{alertname="X"}
  bool firing = true;     // any alert firing
  Labels group_labels, common_labels, common_annotations;
  std::vector<Alert> alerts;
};

// A group as persisted across restarts.
struct GroupRecord {
  std::string route;
  std::string receiver;
  Labels labels;
  std::vector<Alert> alerts;
  std::map<std::string, bool> sent;  // fingerprint -> notified as firing (true) or resolved
  WallTime last_notified{};
};

// Why an alert is not notified.
struct MuteState {
  std::vector<std::string> silenced_by;
  bool inhibited = false;
};

class Dispatcher {
 public:
  using Sink = std::function<void(const Notification&)>;
  Dispatcher(Scheduler& scheduler, Sink sink);
  ~Dispatcher();

  void setConfig(DispatcherConfig config);
  void update(const AlertUpdate& u);

  std::string addSilence(Silence s);  // returns its id (a new one if s.id is empty)
  bool expireSilence(const std::string& id, WallTime at);
  std::vector<Silence> silences() const { return silences_; }
  MuteState muted(const Labels& labels) const;

  std::vector<GroupRecord> groups() const;
  void restore(const std::vector<GroupRecord>& groups, std::vector<Silence> silences);
  // After restore(): a notification the previous run had queued (it is still in the outbox)
  // counts as sent even if the saved groups do not show it yet. `sent` is what it tells the
  // receiver (fingerprint -> firing). Returns whether the group's record changed.
  bool restoreQueued(const std::string& group_key, const std::map<std::string, bool>& sent, WallTime at);
  size_t groupCount() const { return groups_.size(); }

 private:
  struct Route {
    std::string id;  // path of matchers from the root, stable across reloads of the same tree
    std::string receiver;
    std::vector<std::string> group_by;
    bool group_by_all = false;
    Duration group_wait, group_interval, repeat_interval;
    bool resolve_immediately = false;
    bool resend_resolved = false;
  };
  struct Group {
    Route route;
    Labels labels;
    std::map<std::string, Alert> alerts;  // by fingerprint
    std::map<std::string, bool> sent;
    std::map<std::string, Alert> resolved_resend;  // resolved alerts still re-sent (resend receivers)
    WallTime last_notified{};
    bool flushed = false;
    TimerId timer = 0;
    MonoTime due{};
  };
  void collectRoutes(const RouteSpec& spec, const Route& parent, const Labels& labels,
                     std::vector<Route>& out) const;
  std::vector<Route> routesFor(const Labels& labels) const;
  void schedule(const std::string& key, MonoTime at);
  void flush(const std::string& key);

  Scheduler& scheduler_;
  Sink sink_;
  DispatcherConfig config_;
  std::map<std::string, Group> groups_;          // by group key
  std::map<std::string, Alert> firing_;          // every firing alert, for inhibition
  std::vector<Silence> silences_;
};

}  // namespace greenlight::alerts
