#include "greenlight/controller/rollout.h"

#include <cstdio>

namespace greenlight::controller {

const char* colorName(Color c) { return c == Color::kBlue ? "blue" : "green"; }

std::optional<Color> parseColor(const std::string& s) {
  if (s == "blue") return Color::kBlue;
  if (s == "green") return Color::kGreen;
  return std::nullopt;
}

namespace {
const char* const kPhaseNames[] = {"idle",     "deploying", "ready-check",  "pre-promotion", "shifting",
                                   "post-promotion", "promoted", "rolling-back", "rolled-back"};
constexpr int kPhaseCount = 9;
constexpr size_t kMaxResults = 50;
}  // namespace

const char* phaseName(RolloutPhase p) { return kPhaseNames[static_cast<int>(p)]; }

std::optional<RolloutPhase> parsePhase(const std::string& s) {
  for (int i = 0; i < kPhaseCount; ++i) {
    if (s == kPhaseNames[i]) return static_cast<RolloutPhase>(i);
  }
  return std::nullopt;
}

const char* verdictName(Verdict v) {
  switch (v) {
    case Verdict::kPass: return "pass";
    case Verdict::kFail: return "fail";
    case Verdict::kInconclusive: return "inconclusive";
  }
  return "?";
}

namespace {

struct Machine {
  const RolloutSpec& spec;
  const WallTime now;
  Transition t;

  RolloutState& s() { return t.state; }
  void effect(EffectKind k, Color c, int weight = 0, std::string name = "", std::string detail = "") {
    t.effects.push_back({k, c, weight, std::move(name), std::move(detail)});
  }
  void audit(const std::string& action, const std::string& detail) {
    effect(EffectKind::kAudit, s().candidate(), s().weight, action, detail);
  }
  void enter(RolloutPhase p) {
    s().phase = p;
    s().phase_since = now;
    s().passes = s().failures = s().inconclusive = 0;
    s().measuring = false;
    s().measure_at = now + std::chrono::duration_cast<WallTime::duration>(spec.analysis.interval);
  }
  void setWeight(int w) {
    s().weight = w;
    effect(EffectKind::kSetWeights, s().candidate(), w);
  }
  void record(const std::string& what) {
    s().results.push_back(what);
    if (s().results.size() > kMaxResults) s().results.erase(s().results.begin());
  }

  void rollback(const std::string& reason) {
    s().reason = reason;
    s().paused = false;
    s().awaiting_promotion = false;
    enter(RolloutPhase::kRollingBack);
    setWeight(0);  // one router change: everything to the stable colour
    stopMirroring();
    audit("rollback", reason);
  }

  void startMirroring() {
    s().mirroring = true;
    enter(RolloutPhase::kPrePromotion);  // the analysis counts (and the deadline runs) from here
    effect(EffectKind::kSetMirror, s().candidate(), spec.strategy.mirror);
    audit("mirror", std::to_string(spec.strategy.mirror) + "% of the requests to " + colorName(s().stable) + " copied to " +
                        colorName(s().candidate()) + " for analysis");
  }
  void stopMirroring() {
    if (!s().mirroring) return;
    s().mirroring = false;
    effect(EffectKind::kSetMirror, s().candidate(), 0);
  }

  // Pre-promotion passed (preview requests, then mirrored traffic if any): shift, or wait.
  void prePromotionPassed() {
    RolloutState& st = s();
    if (spec.strategy.auto_promote && !spec.strategy.confirm_promotion_gate) return shiftTo(0);
    st.awaiting_promotion = true;
    audit("awaiting_promotion", st.candidate_release + " passed pre-promotion; waiting for " +
                                    (spec.strategy.confirm_promotion_gate ? "the confirm-promotion gate" : "promote"));
    if (spec.strategy.confirm_promotion_gate) {
      st.measuring = true;
      effect(EffectKind::kGate, st.candidate(), 0, "confirm-promotion", st.candidate_release);
    }
  }

  void shiftTo(size_t step) {
    s().step = static_cast<int>(step);
    enter(RolloutPhase::kShifting);
    s().measure_at = now + std::chrono::duration_cast<WallTime::duration>(spec.strategy.bakeOf(step) + spec.analysis.interval);
    setWeight(spec.strategy.steps[step]);
    audit("shift", "step " + std::to_string(step + 1) + " of " + std::to_string(spec.strategy.steps.size()) + ": " +
                       std::to_string(spec.strategy.steps[step]) + "% to " + colorName(s().candidate()));
  }

  void startPostPromotion() {
    if (s().weight != 100) setWeight(100);
    enter(RolloutPhase::kPostPromotion);
  }

  void promoted(const std::string& how) {
    const std::string release = s().candidate_release;
    s().previous_release = s().stable_release;
    s().stable_release = release;
    s().candidate_release.clear();
    s().stable = s().candidate();
    s().weight = 0;
    s().step = -1;
    enter(RolloutPhase::kPromoted);
    audit("promoted", release + " is stable on " + colorName(s().stable) + " (" + how + ")");
    effect(EffectKind::kRaise, s().stable, 100, "rollout_promoted", release);
  }

  void measured(const Event& e) {
    s().measuring = false;
    const std::string where = std::string(phaseName(s().phase)) +
                              (s().phase == RolloutPhase::kShifting ? " " + std::to_string(s().weight) + "%" : "") +
                              (s().mirroring ? " (mirrored " + std::to_string(spec.strategy.mirror) + "%)" : "");
    record(where + ": " + verdictName(e.verdict) + (e.detail.empty() ? "" : " (" + e.detail + ")"));
    switch (e.verdict) {
      case Verdict::kPass:
        ++s().passes;
        s().inconclusive = 0;
        break;
      case Verdict::kFail:
        ++s().failures;
        s().inconclusive = 0;
        if (s().failures > spec.analysis.failure_limit) {
          effect(EffectKind::kRaise, s().candidate(), s().weight, "analysis_failed", e.detail);
          rollback("analysis failed at " + where + ": " + e.detail);
          return;
        }
        break;
      case Verdict::kInconclusive:
        if (++s().inconclusive >= spec.analysis.inconclusive_limit) {
          s().paused = true;
          s().reason = "paused: " + std::to_string(s().inconclusive) + " inconclusive analyses in a row (" + e.detail + ")";
          effect(EffectKind::kRaise, s().candidate(), s().weight, "analysis_inconclusive", e.detail);
          audit("pause", s().reason);
        }
        return;
    }
    if (s().passes < spec.analysis.count) return;
    if (s().phase == RolloutPhase::kShifting) {
      const size_t next = static_cast<size_t>(s().step) + 1;
      if (spec.strategy.pauseAfter(static_cast<size_t>(s().step))) {
        // A manual gate after this step: analysis goes on (a failure still rolls back) while a
        // person decides.
        if (!s().awaiting_promotion) {
          s().awaiting_promotion = true;
          audit("awaiting_promotion", "step " + std::to_string(s().step + 1) + " of " + std::to_string(spec.strategy.steps.size()) +
                                          " (" + std::to_string(s().weight) + "%) passed; waiting for promote");
        }
        return;
      }
      if (next < spec.strategy.steps.size()) {
        shiftTo(next);
      } else {
        startPostPromotion();
      }
    } else if (s().phase == RolloutPhase::kPostPromotion) {
      promoted("analysis passed");
    } else if (s().phase == RolloutPhase::kPrePromotion && s().mirroring) {
      stopMirroring();
      audit("mirror", "mirrored traffic passed: " + std::to_string(s().passes) + " analyses");
      prePromotionPassed();
    }
  }

  void tick() {
    RolloutState& st = s();
    if (st.phase == RolloutPhase::kRollingBack) {
      // The router change failed (or is not confirmed yet): assert it again.
      if (now >= st.measure_at) {
        st.measure_at = now + std::chrono::duration_cast<WallTime::duration>(spec.analysis.interval);
        setWeight(0);
      }
      return;
    }
    if (st.phase == RolloutPhase::kPromoted) {
      if (!st.previous_release.empty() && now - st.phase_since >= spec.strategy.scale_down_delay) {
        effect(EffectKind::kStopColor, st.candidate(), 0, "scale_down", st.previous_release);
        audit("scale_down", st.previous_release + " on " + colorName(st.candidate()) + " stopped");
        st.previous_release.clear();
      }
      return;
    }
    if (!st.active() || st.paused) return;
    if (!st.awaiting_promotion && now - st.phase_since > spec.strategy.progress_deadline) {
      effect(EffectKind::kRaise, st.candidate(), st.weight, "rollout_stuck", phaseName(st.phase));
      rollback(std::string("progress deadline passed in ") + phaseName(st.phase));
      return;
    }
    if (st.phase == RolloutPhase::kDeploying) {
      // A gate that said "ask again", or an answer lost in a restart: ask (or deploy) again.
      if (!st.measuring && now >= st.measure_at) {
        st.measuring = true;
        st.measure_at = now + std::chrono::duration_cast<WallTime::duration>(spec.analysis.interval);
        if (spec.strategy.pre_rollout_gate && !st.gate_passed) {
          effect(EffectKind::kGate, st.candidate(), 0, "pre-rollout", st.candidate_release);
        } else {
          effect(EffectKind::kDeploy, st.candidate(), 0, "", st.candidate_release);
        }
      }
      return;
    }
    if (st.awaiting_promotion && spec.strategy.confirm_promotion_gate && !st.measuring && now >= st.measure_at) {
      st.measuring = true;
      st.measure_at = now + std::chrono::duration_cast<WallTime::duration>(spec.analysis.interval);
      effect(EffectKind::kGate, st.candidate(), 0, "confirm-promotion", st.candidate_release);
      return;
    }
    if (st.measuring || now < st.measure_at) return;
    st.measure_at = now + std::chrono::duration_cast<WallTime::duration>(spec.analysis.interval);
    if (st.phase == RolloutPhase::kReadyCheck) {
      st.measuring = true;
      effect(EffectKind::kCheckReady, st.candidate());
    } else if (st.phase == RolloutPhase::kShifting || st.phase == RolloutPhase::kPostPromotion) {
      st.measuring = true;
      effect(EffectKind::kMeasure, st.candidate(), st.weight);
    } else if (st.phase == RolloutPhase::kPrePromotion && st.mirroring) {
      st.measuring = true;
      effect(EffectKind::kMeasure, st.candidate(), 0, "mirrored");
    }
  }

  void handle(const Event& e) {
    RolloutState& st = s();
    const auto reject = [&](const std::string& why) { t.error = why; };
    switch (e.kind) {
      case EventKind::kStart:
        if (st.active()) return reject("a rollout of " + st.candidate_release + " is in progress (" + phaseName(st.phase) + ")");
        if (e.release.empty()) return reject("a release name is required");
        if (e.release == st.stable_release) return reject(e.release + " is already the stable release");
        st.candidate_release = e.release;
        st.started_at = now;
        st.results.clear();
        st.reason.clear();
        st.paused = st.awaiting_promotion = false;
        st.gate_passed = false;
        st.step = -1;
        enter(RolloutPhase::kDeploying);
        setWeight(0);  // whatever the router had, the new colour starts with nothing
        audit("start", e.release + " on " + colorName(st.candidate()) + " by " + e.actor);
        st.measuring = true;
        if (spec.strategy.pre_rollout_gate) {
          effect(EffectKind::kGate, st.candidate(), 0, "pre-rollout", e.release);
        } else {
          effect(EffectKind::kDeploy, st.candidate(), 0, "", e.release);
        }
        return;
      case EventKind::kGated:
        st.measuring = false;
        record(e.gate + " gate: " + verdictName(e.verdict) + (e.detail.empty() ? "" : " (" + e.detail + ")"));
        if (e.gate == "pre-rollout" && st.phase == RolloutPhase::kDeploying && !st.gate_passed) {
          if (e.verdict == Verdict::kFail) return rollback("pre-rollout gate refused: " + e.detail);
          if (e.verdict == Verdict::kPass) {
            st.gate_passed = true;
            st.measuring = true;
            effect(EffectKind::kDeploy, st.candidate(), 0, "", st.candidate_release);
          }
          return;  // inconclusive: asked again at the next tick
        }
        if (e.gate == "confirm-promotion" && st.awaiting_promotion) {
          if (e.verdict == Verdict::kFail) return rollback("confirm-promotion gate refused: " + e.detail);
          if (e.verdict == Verdict::kPass) {
            st.awaiting_promotion = false;
            audit("promote", "confirmed by the confirm-promotion gate");
            return shiftTo(0);
          }
        }
        return;
      case EventKind::kDeployed:
        if (st.phase != RolloutPhase::kDeploying) return;
        st.measuring = false;
        record(std::string("deploy: ") + (e.ok ? "done" : "failed") + (e.detail.empty() ? "" : " (" + e.detail + ")"));
        if (!e.ok) {
          effect(EffectKind::kRaise, st.candidate(), 0, "deploy_failed", e.detail);
          return rollback("deploy failed: " + e.detail);
        }
        enter(RolloutPhase::kReadyCheck);
        st.measuring = true;
        effect(EffectKind::kCheckReady, st.candidate());
        return;
      case EventKind::kReady:
        if (st.phase != RolloutPhase::kReadyCheck) return;
        st.measuring = false;
        if (!e.ok) {
          record("ready-check: not ready (" + e.detail + ")");
          return;  // asked again at the next interval; the progress deadline bounds it
        }
        record("ready-check: ready");
        enter(RolloutPhase::kPrePromotion);
        st.measuring = true;
        effect(EffectKind::kPreview, st.candidate(), 0, "", std::to_string(spec.strategy.preview_requests));
        return;
      case EventKind::kPreviewed:
        if (st.phase != RolloutPhase::kPrePromotion) return;
        st.measuring = false;
        record(std::string("pre-promotion: ") + (e.ok ? "pass" : "fail") + (e.detail.empty() ? "" : " (" + e.detail + ")"));
        if (!e.ok) {
          effect(EffectKind::kRaise, st.candidate(), 0, "analysis_failed", e.detail);
          return rollback("pre-promotion check failed: " + e.detail);
        }
        if (spec.strategy.mirror > 0) return startMirroring();
        return prePromotionPassed();
      case EventKind::kMeasured:
        if (st.phase != RolloutPhase::kShifting && st.phase != RolloutPhase::kPostPromotion &&
            !(st.phase == RolloutPhase::kPrePromotion && st.mirroring)) {
          return;
        }
        return measured(e);
      case EventKind::kRouted:
        if (e.ok) {
          if (st.phase == RolloutPhase::kRollingBack) {
            const std::string failed = st.candidate_release;
            enter(RolloutPhase::kRolledBack);
            effect(EffectKind::kRaise, st.candidate(), 0, "rollout_rolled_back", st.reason);
            effect(EffectKind::kStopColor, st.candidate(), 0, "failed", failed);
            audit("rolled_back", failed + ": " + st.reason);
          }
          return;
        }
        record("router: " + e.detail);
        if (st.active() && st.phase != RolloutPhase::kRollingBack) return rollback("router change failed: " + e.detail);
        return;
      case EventKind::kTick: return tick();
      case EventKind::kPromote:
        if (st.awaiting_promotion && st.phase == RolloutPhase::kShifting) {
          // Past the manual gate after a step: on to the next one.
          st.awaiting_promotion = false;
          const size_t next = static_cast<size_t>(st.step) + 1;
          audit("promote", "by " + e.actor + " after step " + std::to_string(next) + " of " +
                               std::to_string(spec.strategy.steps.size()));
          if (next < spec.strategy.steps.size()) return shiftTo(next);
          return startPostPromotion();
        }
        if (st.awaiting_promotion) {
          st.awaiting_promotion = false;
          audit("promote", "by " + e.actor);
          return shiftTo(0);
        }
        if (st.phase == RolloutPhase::kShifting) {
          audit("promote", "full promotion by " + e.actor + ", skipping the remaining steps");
          return startPostPromotion();
        }
        if (st.phase == RolloutPhase::kPostPromotion) return promoted("promoted by " + e.actor);
        return reject(std::string("nothing to promote in phase ") + phaseName(st.phase));
      case EventKind::kPause:
        if (!st.active() || st.phase == RolloutPhase::kRollingBack) return reject("no rollout in progress");
        if (st.paused) return reject("already paused");
        st.paused = true;
        st.reason = "paused by " + e.actor;
        audit("pause", st.reason);
        return;
      case EventKind::kResume:
        if (!st.paused) return reject("not paused");
        st.paused = false;
        st.inconclusive = 0;
        st.reason.clear();
        st.phase_since = now;  // the progress deadline restarts
        st.measure_at = now + std::chrono::duration_cast<WallTime::duration>(spec.analysis.interval);
        audit("resume", "by " + e.actor);
        return;
      case EventKind::kAbort:
        if (!st.active() || st.phase == RolloutPhase::kRollingBack) return reject("no rollout in progress");
        return rollback("aborted by " + e.actor + (e.detail.empty() ? "" : ": " + e.detail));
      case EventKind::kRollback:
        if (st.active() && st.phase != RolloutPhase::kRollingBack) {
          return rollback("rolled back by " + e.actor + (e.detail.empty() ? "" : ": " + e.detail));
        }
        if (st.phase == RolloutPhase::kPromoted && !st.previous_release.empty()) {
          // The previous release is still warm on the other colour: make it stable again.
          st.candidate_release = st.stable_release;
          st.stable_release = st.previous_release;
          st.previous_release.clear();
          st.stable = st.candidate();
          rollback("rolled back to " + st.stable_release + " by " + e.actor);
          return;
        }
        return reject("nothing to roll back to: no rollout in progress and no warm previous release");
    }
  }
};

}  // namespace

Transition transition(const RolloutSpec& spec, const RolloutState& state, const Event& event, WallTime now) {
  Machine m{spec, now, {state, {}, ""}};
  m.handle(event);
  return m.t;
}

}  // namespace greenlight::controller
