// The blue-green rollout state machine, pure: (spec, state, event, now) -> (state, effects).
// Effects (router changes, readiness and analysis requests, alerts, audit lines) are carried
// out by the Controller shell, which feeds results back as events. Every transition is covered
// by table-driven tests on a simulated clock.
// Plain values; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "greenlight/common/time_source.h"

namespace greenlight::controller {

enum class Color { kBlue, kGreen };
const char* colorName(Color c);
std::optional<Color> parseColor(const std::string& s);
inline Color other(Color c) { return c == Color::kBlue ? Color::kGreen : Color::kBlue; }

enum class RolloutPhase {
  kIdle,           // all traffic on the stable colour
  kDeploying,      // the new release is being started on the idle colour
  kReadyCheck,     // the new release runs on the idle colour; waiting for it to be ready
  kPrePromotion,   // 0% traffic: checked through preview routing
  kShifting,       // traffic moves step by step, each step baked and analysed
  kPostPromotion,  // 100% on the new colour, analysed once more
  kPromoted,       // the new colour is stable; the old one is kept warm for scale_down_delay
  kRollingBack,    // all traffic back to the stable colour
  kRolledBack,
};
const char* phaseName(RolloutPhase p);
std::optional<RolloutPhase> parsePhase(const std::string& s);

enum class NoDataPolicy { kFail, kPass, kInconclusive };

struct AnalysisSpec {
  Duration interval{std::chrono::seconds(10)};
  int count = 3;               // passing measurements a phase (or step) needs
  int failure_limit = 0;       // failed measurements tolerated; one more rolls back
  int inconclusive_limit = 3;  // consecutive inconclusive ones pause the rollout
  double max_error_ratio = 0.01;  // 5xx of the new colour's answers
  int min_requests = 20;       // fewer in an interval: no data
  // The new colour's upstream latency at `latency_quantile` over the interval, from the proxy's
  // histograms, must not exceed this (zero: not checked).
  Duration max_latency{0};
  double latency_quantile = 0.99;
  NoDataPolicy no_data = NoDataPolicy::kInconclusive;
};

struct StrategySpec {
  std::vector<int> steps = {100};  // weights of the new colour; the last is 100
  Duration bake{std::chrono::seconds(0)};  // after each weight change, before measuring
  // Per step (same length as steps, or empty): its own bake time, and whether the rollout waits
  // for `promote` once the step's analysis passed (a manual gate between steps).
  std::vector<std::optional<Duration>> step_bake;
  std::vector<bool> step_pause;
  Duration bakeOf(size_t step) const { return step < step_bake.size() && step_bake[step] ? *step_bake[step] : bake; }
  bool pauseAfter(size_t step) const { return step < step_pause.size() && step_pause[step]; }
  bool auto_promote = true;        // false: wait for `promote` after pre-promotion
  Duration scale_down_delay{std::chrono::minutes(10)};
  Duration progress_deadline{std::chrono::minutes(10)};  // max time in one phase (not paused)
  int preview_requests = 5;        // pre-promotion: requests through preview routing, all 2xx
  // Pre-promotion, after the preview requests: this percentage of the stable colour's GET/HEAD
  // requests is copied to the new colour (the builtin router's mirroring) and analysed like a
  // step (`count` passes) before any client reaches it; 0: no mirroring.
  int mirror = 0;
  // Webhook gates the machine waits on (the shell asks them and answers with kGated):
  bool pre_rollout_gate = false;       // before deploying: go, refuse (roll back) or ask again
  bool confirm_promotion_gate = false; // after pre-promotion: go, or ask again every interval
};

struct RolloutSpec {
  std::string service;
  StrategySpec strategy;
  AnalysisSpec analysis;
};

enum class Verdict { kPass, kFail, kInconclusive };
const char* verdictName(Verdict v);

struct RolloutState {
  std::string service;
  RolloutPhase phase = RolloutPhase::kIdle;
  Color stable = Color::kBlue;
  std::string stable_release;
  std::string candidate_release;
  std::string previous_release;  // after a promotion: what the old colour still runs
  int step = -1;                 // index into strategy.steps while shifting
  int weight = 0;                // the new colour's weight as last set
  bool paused = false;
  bool awaiting_promotion = false;
  bool gate_passed = false;      // the pre-rollout gate said go for this rollout
  bool measuring = false;        // a kMeasure (or kCheckReady) is out; no second one
  bool mirroring = false;        // pre-promotion: copies of live traffic go to the new colour
  WallTime phase_since{};
  WallTime started_at{};         // when the current (or last) rollout started
  WallTime measure_at{};         // next measurement due
  int passes = 0, failures = 0, inconclusive = 0;  // in this phase/step
  std::vector<std::string> results;  // analysis verdicts of this rollout, newest last (bounded)
  std::string reason;            // why it rolled back or paused
  Color candidate() const { return other(stable); }
  bool active() const {
    return phase != RolloutPhase::kIdle && phase != RolloutPhase::kPromoted && phase != RolloutPhase::kRolledBack;
  }
};

enum class EventKind {
  kStart,       // release
  kDeployed,    // ok, detail
  kReady,       // ok, detail
  kPreviewed,   // ok, detail
  kGated,       // gate, verdict: pass (go), fail (refused), inconclusive (ask again later)
  kMeasured,    // verdict, detail
  kRouted,      // ok, detail: a SetWeights effect was applied (or failed)
  kTick,
  kPromote,
  kPause,
  kResume,
  kAbort,       // detail: why
  kRollback,    // back to the previous release while it is warm
};

struct Event {
  Event(EventKind k = EventKind::kTick) : kind(k) {}  // NOLINT: implicit, events are built from their kind
  EventKind kind;
  std::string release;
  bool ok = true;
  Verdict verdict = Verdict::kPass;
  std::string detail;
  std::string gate;
  std::string actor = "controller";
};

enum class EffectKind {
  kSetWeights,   // weight = the new colour's; stable gets the rest (one atomic router change)
  kSetMirror,    // weight = the percentage of requests copied to the new colour (0: off)
  kDeploy,       // start the candidate release on `color` (detail: the release)
  kCheckReady,   // is the candidate colour ready?
  kGate,         // ask the webhook gate `name`
  kPreview,      // send preview requests to the candidate colour
  kMeasure,      // analyse the candidate colour over the last interval (name "mirrored": its
                 // answers to mirrored copies)
  kStopColor,    // stop the release on `color` (scale-down after promotion, or the failed one)
  kRaise,        // an alert event: event, detail
  kAudit,        // action, detail
};

struct Effect {
  EffectKind kind;
  Color color = Color::kBlue;  // the colour the effect is about
  int weight = 0;              // kSetWeights: the candidate's weight
  std::string name;            // kRaise: event name; kAudit: action
  std::string detail;
};

struct Transition {
  RolloutState state;
  std::vector<Effect> effects;
  std::string error;  // a command that does not apply now ("no rollout in progress")
};

Transition transition(const RolloutSpec& spec, const RolloutState& state, const Event& event, WallTime now);

}  // namespace greenlight::controller
