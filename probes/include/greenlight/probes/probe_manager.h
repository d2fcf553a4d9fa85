// Schedules every configured probe on the injected scheduler: start times spread across the
// interval (injected random source), a fixed rate from then on, an overlapping run skipped and
// counted, never a burst. Keeps each probe's health and last result, feeds ProbeMetrics and
// listeners (alerting). apply() reconciles a new config: unchanged probes keep their schedule
// and health. Loop-thread only, except snapshot(), which any thread may call.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "greenlight/probes/probe_metrics.h"
#include "greenlight/probes/probe_run.h"

namespace greenlight::probes {

// One past run, for the status page's sparkline: how long it took and whether it passed.
// Nothing of the response is kept.
struct RecentRun {
  float duration_ms = 0;
  bool success = false;
};

struct ProbeStatus {
  static constexpr size_t kRecentRuns = 30;
  std::shared_ptr<const ProbeSpec> spec;  // name, labels, interval
  HealthState health;
  std::optional<ProbeResult> last;  // only the latest result; nothing older is kept
  std::vector<RecentRun> recent;    // the last kRecentRuns durations and outcomes, oldest first
};

using Headers = std::vector<std::pair<std::string, std::string>>;
using OnceDone = std::function<void(std::optional<ProbeResult>)>;

using ResultListener =
    std::function<void(const ProbeSpec&, const ProbeResult&, const HealthState&, HealthTransition)>;

class ProbeManager {
 public:
  ProbeManager(Transport& transport, Scheduler& scheduler, RandomSource& random,
               std::shared_ptr<ProbeMetrics> metrics);
  ~ProbeManager();

  void apply(std::vector<ProbeSpec> specs);
  void stopAll();
  void addListener(ResultListener listener) { listeners_.push_back(std::move(listener)); }
  std::vector<ProbeStatus> snapshot() const;
  size_t size() const { return slots_.size(); }
  // Runs the configured probe `name` once more, now, with `extra` headers on every HTTP step
  // (the rollout controller's preview header), outside its schedule: the result goes to `done`
  // only, not to the probe's health, metrics or listeners. nullopt: no such probe. No callback
  // if stopAll() cancels the run first.
  void runOnce(const std::string& name, const Headers& extra, OnceDone done);

 private:
  struct Slot {
    std::shared_ptr<const ProbeSpec> spec;
    uint64_t fingerprint = 0;
    MonoTime planned;
    TimerId timer = 0;
    std::shared_ptr<ProbeRun> run;
    HealthState health;
  };
  // Timers and run callbacks hold a Slot&: map nodes are stable, and every path that erases or
  // replaces a slot cancels its timer and its run first.
  void schedule(Slot& slot);
  void tick(Slot& slot);
  void onResult(Slot& slot, ProbeResult result);

  Transport& transport_;
  Scheduler& scheduler_;
  RandomSource& random_;
  std::shared_ptr<ProbeMetrics> metrics_;
  TokenCache tokens_;
  std::map<std::string, Slot> slots_;
  std::vector<ResultListener> listeners_;
  std::map<uint64_t, std::shared_ptr<ProbeRun>> one_offs_;
  uint64_t next_one_off_ = 0;
  mutable std::mutex status_mu_;
  std::map<std::string, ProbeStatus> status_;
};

}  // namespace greenlight::probes
