// The controller shell: runs each service's rollout state machine on its own thread, carries out
// the effects (router changes, readiness and preview checks, analysis from the router's per-colour
// counters, alert events, audit lines), and persists every state before acting on it, so a
// controller killed mid-rollout resumes where it was and re-asserts the router's weights.
// Thread-safe: commands and snapshots from any thread.
#pragma once

#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "greenlight/common/status.h"
#include "greenlight/common/time_source.h"
#include "greenlight/controller/audit_log.h"
#include "greenlight/controller/controller_config.h"

namespace greenlight::controller {

struct ServiceView {
  std::string service;
  std::string router;
  RolloutState state;
  StrategySpec strategy;
};

// The API's JSON for a list of services (phase, weights, analysis results, time in phase).
std::string servicesToJson(const std::vector<ServiceView>& views, WallTime now);

class Controller {
 public:
  // An alert event for the alerting rules (kind `event`): name, labels, annotations.
  using EventSink = std::function<void(const std::string&, const std::map<std::string, std::string>&,
                                       const std::map<std::string, std::string>&)>;
  // A configured probe run once with one extra header (`header: value`, the preview header
  // naming the colour under analysis). nullopt: no such probe, or it could not run.
  struct ProbeOutcome {
    bool success = false;
    std::string message;  // the failed condition with its actual value
  };
  using ProbeRunner =
      std::function<std::optional<ProbeOutcome>(const std::string& probe, const std::string& header, const std::string& value)>;
  static StatusOr<std::unique_ptr<Controller>> start(ControllerConfig config, const TimeSource& time,
                                                     prometheus::Registry& registry, EventSink events,
                                                     ProbeRunner probes = nullptr);
  ~Controller();

  // A command from a person (actor: the token's name). Returns the state after it, or why not.
  StatusOr<ServiceView> command(const std::string& service, EventKind kind, const std::string& actor,
                                const std::string& release = "", const std::string& reason = "");
  std::vector<ServiceView> services() const;
  // A reloaded `rollouts:` section: services added, removed or changed, all or nothing. Refused
  // (nothing changes) if it removes a service in an active rollout or changes its router or
  // instances; strategy, analysis, gates and commands may change at any time.
  Status reconfigure(const ControllerConfig& config);
  // The service's last `limit` audit lines (JSON objects as text), oldest first.
  StatusOr<std::vector<std::string>> history(const std::string& service, size_t limit) const;
  void stop();

 private:
  struct Impl;
  explicit Controller(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace greenlight::controller
