// One run of a probe: its steps in order (with captured values and the OAuth2 token cache),
// conditions checked, retries with back-off inside the run's timeout. Runs on the engine's loop
// thread; the callback is called exactly once unless the run is cancelled.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "greenlight/common/random.h"
#include "greenlight/common/scheduler.h"
#include "greenlight/probes/probe_result.h"
#include "greenlight/probes/probe_spec.h"
#include "greenlight/probes/token_cache.h"
#include "greenlight/probes/transport.h"

namespace greenlight::probes {

struct RunContext {
  Transport& transport;
  Scheduler& scheduler;
  RandomSource& random;
  TokenCache& tokens;
};

class ProbeRun : public std::enable_shared_from_this<ProbeRun> {
 public:
  using Done = std::function<void(ProbeResult)>;
  static std::shared_ptr<ProbeRun> start(std::shared_ptr<const ProbeSpec> spec, RunContext ctx,
                                         Done done);
  ProbeRun(std::shared_ptr<const ProbeSpec> spec, RunContext ctx, Done done);
  // Stops the run without a callback (probe removed or engine stopping).
  void cancel();

 private:
  void startAttempt();
  void runStep(size_t index);
  void stepDone(size_t index, StepResult step);
  void onTransportDone(size_t index, TransportResult r, MonoTime started);
  void finishAttempt(bool success);
  void finish();
  void onDeadline();
  std::string substitute(const std::string& text) const;

  std::shared_ptr<const ProbeSpec> spec_;
  RunContext ctx_;
  Done done_;
  MonoTime started_;
  MonoTime deadline_;
  TimerId deadline_timer_ = 0;
  TimerId retry_timer_ = 0;
  std::optional<RequestId> in_flight_;
  size_t in_flight_step_ = 0;
  std::map<std::string, std::string> captures_;
  std::vector<std::string> used_tokens_;  // cache keys used this attempt (invalidate on 401)
  ProbeResult result_;
  bool finished_ = false;
};

}  // namespace greenlight::probes
