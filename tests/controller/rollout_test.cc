#include "greenlight/controller/rollout.h"

#include <gtest/gtest.h>

#include <optional>

namespace greenlight::controller {
namespace {

using namespace std::chrono_literals;

// Drives the pure machine like the shell does, on a simulated wall clock.
struct Driver {
  RolloutSpec spec;
  RolloutState state;
  WallTime now = WallTime{} + 1000h;
  std::vector<Effect> effects;  // all, in order
  std::string error;

  Driver() {
    spec.service = "vehicles";
    spec.strategy.steps = {10, 50, 100};
    spec.strategy.bake = 0s;
    spec.analysis.interval = 10s;
    spec.analysis.count = 2;
    state.service = "vehicles";
    state.stable_release = "v1";
  }
  std::vector<Effect> send(Event e) {
    Transition t = transition(spec, state, e, now);
    state = t.state;
    error = t.error;
    effects.insert(effects.end(), t.effects.begin(), t.effects.end());
    return t.effects;
  }
  std::vector<Effect> send(EventKind k) { return send(Event{k}); }
  std::vector<Effect> tick(Duration d) {
    now += std::chrono::duration_cast<WallTime::duration>(d);
    return send(EventKind::kTick);
  }
  void measure(Verdict v, const std::string& detail = "") {
    Event e{EventKind::kMeasured};
    e.verdict = v;
    e.detail = detail;
    send(e);
  }
  void startToShifting() {
    Event start{EventKind::kStart};
    start.release = "v2";
    send(start);
    send(Event{EventKind::kDeployed});
    send(Event{EventKind::kReady});
    send(Event{EventKind::kPreviewed});
  }
  // Ticks until a kMeasure is asked for and returns it (its name says what to measure).
  std::optional<Effect> nextMeasure() {
    for (int i = 0; i < 100; ++i) {
      for (const auto& e : tick(1s)) {
        if (e.kind == EffectKind::kMeasure) return e;
      }
    }
    return std::nullopt;
  }
  // Ticks until a kMeasure is asked for, then answers it.
  void measureNext(Verdict v) {
    for (int i = 0; i < 100; ++i) {
      for (const auto& e : tick(1s)) {
        if (e.kind == EffectKind::kMeasure) return measure(v);
      }
    }
    FAIL() << "no measurement asked for";
  }
  std::vector<int> weights() const {
    std::vector<int> w;
    for (const auto& e : effects) {
      if (e.kind == EffectKind::kSetWeights) w.push_back(e.weight);
    }
    return w;
  }
  bool raised(const std::string& name) const {
    for (const auto& e : effects) {
      if (e.kind == EffectKind::kRaise && e.name == name) return true;
    }
    return false;
  }
};

TEST(RolloutTest, GoodReleaseIsPromotedStepByStep) {
  Driver d;
  d.startToShifting();
  EXPECT_EQ(d.state.phase, RolloutPhase::kShifting);
  EXPECT_EQ(d.state.candidate(), Color::kGreen);
  for (int i = 0; i < 8; ++i) d.measureNext(Verdict::kPass);  // 3 steps + post-promotion, 2 each
  EXPECT_EQ(d.state.phase, RolloutPhase::kPromoted);
  EXPECT_EQ(d.weights(), (std::vector<int>{0, 10, 50, 100}));
  EXPECT_EQ(d.state.stable, Color::kGreen);
  EXPECT_EQ(d.state.stable_release, "v2");
  EXPECT_EQ(d.state.previous_release, "v1");
  EXPECT_TRUE(d.raised("rollout_promoted"));
}

TEST(RolloutTest, AStepWithPauseWaitsForPromoteWhileAnalysisGoesOn) {
  Driver d;
  d.spec.strategy.step_pause = {false, true, false};  // a manual gate after 50%
  d.spec.strategy.progress_deadline = 1min;
  d.startToShifting();
  for (int i = 0; i < 4; ++i) d.measureNext(Verdict::kPass);  // 10% and 50% pass
  EXPECT_EQ(d.state.weight, 50);
  EXPECT_TRUE(d.state.awaiting_promotion);
  // Waiting for a person is not stuck, and passing analyses do not move it on.
  for (int i = 0; i < 10; ++i) d.measureNext(Verdict::kPass);
  EXPECT_EQ(d.state.phase, RolloutPhase::kShifting);
  EXPECT_EQ(d.state.weight, 50);
  EXPECT_FALSE(d.raised("rollout_stuck"));
  Event promote{EventKind::kPromote};
  promote.actor = "alice";
  d.send(promote);
  EXPECT_FALSE(d.state.awaiting_promotion);
  EXPECT_EQ(d.weights(), (std::vector<int>{0, 10, 50, 100})) << "promote moves one step, not to the end";
  EXPECT_EQ(d.state.phase, RolloutPhase::kShifting);
}

TEST(RolloutTest, AFailureWhileWaitingAtAPausedStepStillRollsBack) {
  Driver d;
  d.spec.strategy.step_pause = {true, false, false};
  d.startToShifting();
  d.measureNext(Verdict::kPass);
  d.measureNext(Verdict::kPass);
  ASSERT_TRUE(d.state.awaiting_promotion);
  d.measureNext(Verdict::kFail);
  EXPECT_EQ(d.state.phase, RolloutPhase::kRollingBack);
  EXPECT_FALSE(d.state.awaiting_promotion);
}

TEST(RolloutTest, AStepsOwnBakeDelaysItsFirstMeasurement) {
  Driver d;
  d.spec.strategy.bake = 0s;
  d.spec.strategy.step_bake = {std::nullopt, 5min, std::nullopt};
  d.startToShifting();
  d.measureNext(Verdict::kPass);
  d.measureNext(Verdict::kPass);  // on to 50%, which bakes 5 minutes
  ASSERT_EQ(d.state.weight, 50);
  const WallTime at50 = d.now;
  std::optional<WallTime> asked;
  for (int i = 0; i < 400 && !asked; ++i) {
    for (const auto& e : d.tick(1s)) {
      if (e.kind == EffectKind::kMeasure) asked = d.now;
    }
  }
  ASSERT_TRUE(asked);
  EXPECT_GE(*asked - at50, 5min + 10s) << "bake + one interval before the first measurement at 50%";
  EXPECT_LE(*asked - at50, 5min + 11s);
}

TEST(RolloutTest, AllAtOnceGoesStraightTo100) {
  Driver d;
  d.spec.strategy.steps = {100};
  d.startToShifting();
  d.measureNext(Verdict::kPass);
  d.measureNext(Verdict::kPass);
  EXPECT_EQ(d.state.phase, RolloutPhase::kPostPromotion);
  EXPECT_EQ(d.weights(), (std::vector<int>{0, 100}));
}

TEST(RolloutTest, FailedAnalysisRollsBackInOneRouterChangeAndAlerts) {
  Driver d;
  d.startToShifting();
  d.measureNext(Verdict::kPass);
  d.measureNext(Verdict::kPass);  // now at 50%
  d.measureNext(Verdict::kFail);
  EXPECT_EQ(d.state.phase, RolloutPhase::kRollingBack);
  EXPECT_EQ(d.weights().back(), 0);
  EXPECT_TRUE(d.raised("analysis_failed"));
  Event routed{EventKind::kRouted};
  d.send(routed);
  EXPECT_EQ(d.state.phase, RolloutPhase::kRolledBack);
  EXPECT_EQ(d.state.stable, Color::kBlue);
  EXPECT_EQ(d.state.stable_release, "v1");
  EXPECT_TRUE(d.raised("rollout_rolled_back"));
  bool stopped = false;
  for (const auto& e : d.effects) stopped |= e.kind == EffectKind::kStopColor && e.color == Color::kGreen;
  EXPECT_TRUE(stopped) << "the failed colour is stopped";
}

TEST(RolloutTest, FailureLimitToleratesThatManyFailures) {
  Driver d;
  d.spec.analysis.failure_limit = 1;
  d.startToShifting();
  d.measureNext(Verdict::kFail);
  EXPECT_EQ(d.state.phase, RolloutPhase::kShifting);
  d.measureNext(Verdict::kFail);
  EXPECT_EQ(d.state.phase, RolloutPhase::kRollingBack);
}

TEST(RolloutTest, InconclusiveAnalysesPauseInsteadOfPassingOrFailing) {
  Driver d;
  d.spec.analysis.inconclusive_limit = 2;
  d.startToShifting();
  d.measureNext(Verdict::kInconclusive);
  EXPECT_FALSE(d.state.paused);
  d.measureNext(Verdict::kInconclusive);
  EXPECT_TRUE(d.state.paused);
  EXPECT_TRUE(d.raised("analysis_inconclusive"));
  EXPECT_TRUE(d.tick(1h).empty()) << "a paused rollout neither measures nor hits its deadline";
  d.send(EventKind::kResume);
  EXPECT_FALSE(d.state.paused);
  d.measureNext(Verdict::kPass);
  d.measureNext(Verdict::kPass);
  EXPECT_EQ(d.state.weight, 50);
}

TEST(RolloutTest, ProgressDeadlineRollsBackAStuckReadyCheck) {
  Driver d;
  d.spec.strategy.progress_deadline = 2min;
  Event start{EventKind::kStart};
  start.release = "v2";
  d.send(start);
  d.send(EventKind::kDeployed);
  Event not_ready{EventKind::kReady};
  not_ready.ok = false;
  not_ready.detail = "connection refused";
  d.send(not_ready);
  for (int i = 0; i < 12; ++i) {
    for (const auto& e : d.tick(10s)) {
      if (e.kind == EffectKind::kCheckReady) d.send(not_ready);
    }
  }
  EXPECT_EQ(d.state.phase, RolloutPhase::kReadyCheck);
  d.tick(10s);
  EXPECT_EQ(d.state.phase, RolloutPhase::kRollingBack);
  EXPECT_TRUE(d.raised("rollout_stuck"));
  EXPECT_NE(d.state.reason.find("progress deadline"), std::string::npos);
}

TEST(RolloutTest, ManualGateWaitsForPromote) {
  Driver d;
  d.spec.strategy.auto_promote = false;
  d.startToShifting();
  EXPECT_TRUE(d.state.awaiting_promotion);
  EXPECT_EQ(d.state.phase, RolloutPhase::kPrePromotion);
  d.tick(1h);
  EXPECT_EQ(d.state.phase, RolloutPhase::kPrePromotion) << "waiting for a human is not stuck";
  d.send(EventKind::kPromote);
  EXPECT_EQ(d.state.phase, RolloutPhase::kShifting);
  EXPECT_EQ(d.state.weight, 10);
}

TEST(RolloutTest, PromoteDuringShiftingSkipsTheRemainingSteps) {
  Driver d;
  d.startToShifting();
  d.send(EventKind::kPromote);
  EXPECT_EQ(d.state.phase, RolloutPhase::kPostPromotion);
  EXPECT_EQ(d.state.weight, 100);
}

TEST(RolloutTest, AbortFromEveryActivePhase) {
  for (int stop_after = 0; stop_after < 5; ++stop_after) {
    Driver d;
    Event start{EventKind::kStart};
    start.release = "v2";
    d.send(start);
    if (stop_after >= 1) d.send(EventKind::kDeployed);
    if (stop_after >= 2) d.send(EventKind::kReady);
    if (stop_after >= 3) d.send(EventKind::kPreviewed);
    if (stop_after >= 4) d.send(EventKind::kPromote);  // post-promotion
    Event abort{EventKind::kAbort};
    abort.actor = "alice";
    d.send(abort);
    EXPECT_EQ(d.state.phase, RolloutPhase::kRollingBack) << stop_after;
    EXPECT_EQ(d.weights().back(), 0);
    EXPECT_NE(d.state.reason.find("aborted by alice"), std::string::npos);
    d.send(EventKind::kAbort);
    EXPECT_FALSE(d.error.empty()) << "abort of an abort is refused";
  }
}

TEST(RolloutTest, RollingBackReassertsTheRouterUntilConfirmed) {
  Driver d;
  d.startToShifting();
  d.send(EventKind::kAbort);
  const size_t before = d.weights().size();
  d.tick(10s);
  EXPECT_EQ(d.weights().size(), before + 1);
  EXPECT_EQ(d.weights().back(), 0);
}

TEST(RolloutTest, FailedRouterChangeRollsBack) {
  Driver d;
  d.startToShifting();
  Event failed{EventKind::kRouted};
  failed.ok = false;
  failed.detail = "runtime socket: connection refused";
  d.send(failed);
  EXPECT_EQ(d.state.phase, RolloutPhase::kRollingBack);
}

TEST(RolloutTest, RollbackAfterPromotionWhileThePreviousReleaseIsWarm) {
  Driver d;
  d.spec.strategy.steps = {100};
  d.startToShifting();
  for (int i = 0; i < 4; ++i) d.measureNext(Verdict::kPass);
  ASSERT_EQ(d.state.phase, RolloutPhase::kPromoted);
  d.send(EventKind::kRollback);
  EXPECT_EQ(d.state.phase, RolloutPhase::kRollingBack);
  EXPECT_EQ(d.state.stable, Color::kBlue);
  EXPECT_EQ(d.state.stable_release, "v1");
  EXPECT_EQ(d.effects.back().kind, EffectKind::kAudit);
  EXPECT_EQ(d.weights().back(), 0);  // green (v2) to 0: all on blue
}

TEST(RolloutTest, ScaleDownDelayStopsTheOldColourOnceThenNoRollback) {
  Driver d;
  d.spec.strategy.steps = {100};
  d.spec.strategy.scale_down_delay = 5min;
  d.startToShifting();
  for (int i = 0; i < 4; ++i) d.measureNext(Verdict::kPass);
  ASSERT_EQ(d.state.phase, RolloutPhase::kPromoted);
  d.tick(4min);
  EXPECT_FALSE(d.state.previous_release.empty());
  const auto effects = d.tick(1min);
  ASSERT_FALSE(effects.empty());
  EXPECT_EQ(effects[0].kind, EffectKind::kStopColor);
  EXPECT_EQ(effects[0].color, Color::kBlue);
  d.send(EventKind::kRollback);
  EXPECT_FALSE(d.error.empty()) << "v1 is no longer warm";
}

TEST(RolloutTest, CommandsThatDoNotApplyAreRefusedWithAReason) {
  Driver d;
  d.send(EventKind::kPromote);
  EXPECT_NE(d.error.find("nothing to promote"), std::string::npos);
  d.send(EventKind::kPause);
  EXPECT_NE(d.error.find("no rollout"), std::string::npos);
  Event same{EventKind::kStart};
  same.release = "v1";
  d.send(same);
  EXPECT_NE(d.error.find("already the stable release"), std::string::npos);
  d.startToShifting();
  Event again{EventKind::kStart};
  again.release = "v3";
  d.send(again);
  EXPECT_NE(d.error.find("in progress"), std::string::npos);
}

TEST(RolloutTest, StartDeploysTheReleaseOnTheIdleColourFirst) {
  Driver d;
  Event start{EventKind::kStart};
  start.release = "v2";
  const auto fx = d.send(start);
  EXPECT_EQ(d.state.phase, RolloutPhase::kDeploying);
  bool deploy = false;
  for (const auto& e : fx) deploy |= e.kind == EffectKind::kDeploy && e.color == Color::kGreen && e.detail == "v2";
  EXPECT_TRUE(deploy);
  d.tick(1s);
  size_t deploys = 0;
  for (const auto& e : d.effects) deploys += e.kind == EffectKind::kDeploy;
  EXPECT_EQ(deploys, 1u) << "not started twice while the first is running";
  d.state.measuring = false;  // as after a restart: the command's answer is lost
  d.tick(10s);
  deploys = 0;
  for (const auto& e : d.effects) deploys += e.kind == EffectKind::kDeploy;
  EXPECT_EQ(deploys, 2u) << "started again";
}

TEST(RolloutTest, FailedDeployRollsBackWithoutTraffic) {
  Driver d;
  Event start{EventKind::kStart};
  start.release = "v2";
  d.send(start);
  Event failed{EventKind::kDeployed};
  failed.ok = false;
  failed.detail = "start command exit 1";
  d.send(failed);
  EXPECT_EQ(d.state.phase, RolloutPhase::kRollingBack);
  EXPECT_TRUE(d.raised("deploy_failed"));
  for (int w : d.weights()) EXPECT_EQ(w, 0);
}

Event gated(const std::string& gate, Verdict v) {
  Event e{EventKind::kGated};
  e.gate = gate;
  e.verdict = v;
  return e;
}

TEST(RolloutTest, PreRolloutGateComesBeforeTheDeploy) {
  Driver d;
  d.spec.strategy.pre_rollout_gate = true;
  Event start{EventKind::kStart};
  start.release = "v2";
  auto fx = d.send(start);
  ASSERT_FALSE(fx.empty());
  bool asked = false, deployed = false;
  for (const auto& e : fx) {
    asked |= e.kind == EffectKind::kGate && e.name == "pre-rollout";
    deployed |= e.kind == EffectKind::kDeploy;
  }
  EXPECT_TRUE(asked);
  EXPECT_FALSE(deployed);
  d.send(gated("pre-rollout", Verdict::kInconclusive));  // no answer, on_timeout: wait
  EXPECT_EQ(d.state.phase, RolloutPhase::kDeploying);
  fx = d.tick(10s);
  ASSERT_EQ(fx.size(), 1u);
  EXPECT_EQ(fx[0].kind, EffectKind::kGate);
  fx = d.send(gated("pre-rollout", Verdict::kPass));
  ASSERT_FALSE(fx.empty());
  EXPECT_EQ(fx[0].kind, EffectKind::kDeploy);
}

TEST(RolloutTest, PreRolloutGateRefusalRollsBackWithoutDeploying) {
  Driver d;
  d.spec.strategy.pre_rollout_gate = true;
  Event start{EventKind::kStart};
  start.release = "v2";
  d.send(start);
  d.send(gated("pre-rollout", Verdict::kFail));
  EXPECT_EQ(d.state.phase, RolloutPhase::kRollingBack);
  for (const auto& e : d.effects) EXPECT_NE(e.kind, EffectKind::kDeploy);
}

TEST(RolloutTest, ConfirmPromotionGateHoldsUntilItSaysGo) {
  Driver d;
  d.spec.strategy.confirm_promotion_gate = true;
  d.startToShifting();
  EXPECT_TRUE(d.state.awaiting_promotion);
  d.send(gated("confirm-promotion", Verdict::kInconclusive));  // "not yet"
  EXPECT_EQ(d.state.phase, RolloutPhase::kPrePromotion);
  auto fx = d.tick(1h);
  ASSERT_EQ(fx.size(), 1u) << "asked again, and not stuck while waiting";
  EXPECT_EQ(fx[0].name, "confirm-promotion");
  d.send(gated("confirm-promotion", Verdict::kPass));
  EXPECT_EQ(d.state.phase, RolloutPhase::kShifting);
  EXPECT_EQ(d.state.weight, 10);
}

TEST(RolloutTest, FailedPreviewRollsBackBeforeAnyTraffic) {
  Driver d;
  Event start{EventKind::kStart};
  start.release = "v2";
  d.send(start);
  d.send(EventKind::kDeployed);
  d.send(EventKind::kReady);
  Event bad{EventKind::kPreviewed};
  bad.ok = false;
  bad.detail = "3 of 5 preview requests answered 503";
  d.send(bad);
  EXPECT_EQ(d.state.phase, RolloutPhase::kRollingBack);
  for (int w : d.weights()) EXPECT_EQ(w, 0) << "no traffic ever reached v2";
}

// The mirror effects asked for, in order (the percentage each set).
std::vector<int> mirrors(const Driver& d) {
  std::vector<int> m;
  for (const auto& e : d.effects) {
    if (e.kind == EffectKind::kSetMirror) m.push_back(e.weight);
  }
  return m;
}

TEST(RolloutTest, WithMirrorTheNewColourIsAnalysedOnCopiesBeforeAnyTrafficShifts) {
  Driver d;
  d.spec.strategy.mirror = 20;
  d.startToShifting();
  EXPECT_EQ(d.state.phase, RolloutPhase::kPrePromotion);
  EXPECT_TRUE(d.state.mirroring);
  EXPECT_EQ(mirrors(d), (std::vector<int>{20}));
  EXPECT_EQ(d.weights(), (std::vector<int>{0})) << "no traffic yet";
  // The measurements asked for are of the mirrored copies.
  auto asked = d.nextMeasure();
  ASSERT_TRUE(asked);
  EXPECT_EQ(asked->name, "mirrored");
  d.measure(Verdict::kPass, "mirrored copies: 5xx 0 of 40");
  EXPECT_EQ(d.state.phase, RolloutPhase::kPrePromotion) << "count is 2";
  d.measureNext(Verdict::kPass);
  EXPECT_FALSE(d.state.mirroring);
  EXPECT_EQ(mirrors(d), (std::vector<int>{20, 0})) << "mirroring ends before the shift";
  EXPECT_EQ(d.state.phase, RolloutPhase::kShifting);
  EXPECT_EQ(d.weights(), (std::vector<int>{0, 10}));
  EXPECT_NE(d.state.results.back().find("pre-promotion (mirrored 20%): pass"), std::string::npos) << d.state.results.back();
  // The steps are measured on the colour's own traffic again.
  asked = d.nextMeasure();
  ASSERT_TRUE(asked);
  EXPECT_EQ(asked->name, "");
}

TEST(RolloutTest, AFailureOnMirroredCopiesRollsBackBeforeAnyClientReachedTheRelease) {
  Driver d;
  d.spec.strategy.mirror = 50;
  d.startToShifting();
  d.measureNext(Verdict::kFail);
  EXPECT_EQ(d.state.phase, RolloutPhase::kRollingBack);
  EXPECT_FALSE(d.state.mirroring);
  EXPECT_EQ(mirrors(d), (std::vector<int>{50, 0}));
  for (int w : d.weights()) EXPECT_EQ(w, 0) << "no traffic ever reached v2";
  EXPECT_TRUE(d.raised("analysis_failed"));
  EXPECT_NE(d.state.reason.find("pre-promotion (mirrored 50%)"), std::string::npos) << d.state.reason;
}

TEST(RolloutTest, AbortOrADeadlineWhileMirroringTurnsMirroringOff) {
  Driver d;
  d.spec.strategy.mirror = 10;
  d.startToShifting();
  Event abort{EventKind::kAbort};
  abort.actor = "alice";
  d.send(abort);
  EXPECT_EQ(mirrors(d), (std::vector<int>{10, 0}));

  Driver late;
  late.spec.strategy.mirror = 10;
  late.spec.strategy.progress_deadline = 1min;
  late.startToShifting();
  late.measureNext(Verdict::kInconclusive);  // no copies yet: not enough to pass
  late.tick(2min);
  EXPECT_EQ(late.state.phase, RolloutPhase::kRollingBack);
  EXPECT_EQ(mirrors(late), (std::vector<int>{10, 0}));
}

TEST(RolloutTest, WithMirrorAndAManualGateThePromoteWaitComesAfterTheCopiesPassed) {
  Driver d;
  d.spec.strategy.mirror = 10;
  d.spec.strategy.auto_promote = false;
  d.startToShifting();
  EXPECT_FALSE(d.state.awaiting_promotion);
  d.send(EventKind::kPromote);
  EXPECT_FALSE(d.error.empty()) << "nothing to promote while the copies are analysed";
  d.measureNext(Verdict::kPass);
  d.measureNext(Verdict::kPass);
  EXPECT_TRUE(d.state.awaiting_promotion);
  EXPECT_EQ(mirrors(d), (std::vector<int>{10, 0}));
  d.send(EventKind::kPromote);
  EXPECT_EQ(d.state.phase, RolloutPhase::kShifting);
}

}  // namespace
}  // namespace greenlight::controller
