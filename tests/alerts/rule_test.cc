#include "greenlight/alerts/rule.h"

#include <gtest/gtest.h>

namespace greenlight::alerts {
namespace {

using namespace std::chrono_literals;

MonoTime at(Duration d) { return MonoTime{} + d; }
WallTime wall(Duration d) { return WallTime{} + std::chrono::duration_cast<WallTime::duration>(d) + 1000h; }

struct Case {
  const char* name;
  Duration for_duration;
  Duration keep_firing_for;
  NoDataPolicy no_data;
  std::vector<std::pair<Condition, Phase>> steps;  // one evaluation per second
  std::vector<Transition> transitions;
};

TEST(EvaluateInstanceTest, StateMachineTable) {
  const auto T = Condition::kTrue, F = Condition::kFalse, N = Condition::kNoData;
  const auto I = Phase::kInactive, P = Phase::kPending, R = Phase::kFiring;
  const auto none = Transition::kNone, pend = Transition::kBecamePending, fired = Transition::kFired,
             resolved = Transition::kResolved, cleared = Transition::kPendingCleared;
  const std::vector<Case> cases = {
      {"for 0 fires at once", 0s, 0s, NoDataPolicy::kKeep, {{T, R}, {T, R}, {F, I}}, {fired, none, resolved}},
      {"for 2s waits", 2s, 0s, NoDataPolicy::kKeep, {{T, P}, {T, P}, {T, R}, {F, I}}, {pend, none, fired, resolved}},
      {"pending cleared", 2s, 0s, NoDataPolicy::kKeep, {{T, P}, {F, I}, {T, P}}, {pend, cleared, pend}},
      {"keep_firing_for holds", 0s, 2s, NoDataPolicy::kKeep, {{T, R}, {F, R}, {F, I}}, {fired, none, resolved}},
      {"keep_firing_for reset by true", 0s, 2s, NoDataPolicy::kKeep, {{T, R}, {F, R}, {T, R}, {F, R}, {F, I}},
       {fired, none, none, none, resolved}},
      {"no data keeps firing", 0s, 0s, NoDataPolicy::kKeep, {{T, R}, {N, R}, {N, R}}, {fired, none, none}},
      {"no data keeps inactive", 0s, 0s, NoDataPolicy::kKeep, {{N, I}, {F, I}}, {none, none}},
      {"no data resolves", 0s, 0s, NoDataPolicy::kResolve, {{T, R}, {N, I}}, {fired, resolved}},
      {"no data alerts", 0s, 0s, NoDataPolicy::kAlert, {{N, R}, {T, R}, {F, I}}, {fired, none, resolved}},
  };
  for (const auto& c : cases) {
    RuleSpec rule;
    rule.for_duration = c.for_duration;
    rule.keep_firing_for = c.keep_firing_for;
    rule.no_data = c.no_data;
    InstanceState s;
    for (size_t i = 0; i < c.steps.size(); ++i) {
      const Duration t = std::chrono::seconds(i);
      Step step = evaluateInstance(rule, s, c.steps[i].first, 1.0, at(t), wall(t));
      EXPECT_EQ(step.next.phase, c.steps[i].second) << c.name << " step " << i;
      EXPECT_EQ(step.transition, c.transitions[i]) << c.name << " step " << i;
      s = step.next;
    }
  }
}

TEST(EvaluateInstanceTest, FiringRecordsStartAndResolvedRecordsEnd) {
  RuleSpec rule;
  InstanceState s;
  s = evaluateInstance(rule, s, Condition::kTrue, 1, at(0s), wall(0s)).next;
  EXPECT_EQ(s.starts_at, wall(0s));
  s = evaluateInstance(rule, s, Condition::kTrue, 1, at(5s), wall(5s)).next;
  EXPECT_EQ(s.starts_at, wall(0s));  // unchanged while firing
  s = evaluateInstance(rule, s, Condition::kFalse, 0, at(9s), wall(9s)).next;
  EXPECT_EQ(s.ends_at, wall(9s));
  EXPECT_EQ(s.starts_at, wall(0s));
}

TEST(TemplateTest, ExpandsLabelsAndValue) {
  const Labels l = {{"oem", "bmw"}, {"probe", "bmw-odometer"}};
  EXPECT_EQ(expandTemplate("{{ $labels.oem }} failing ({{ $value }})", l, 0.25, false), "bmw failing (0.25)");
  EXPECT_EQ(expandTemplate("{{$labels.missing}}x", l, 0, false), "x");
  EXPECT_EQ(expandTemplate("value {{ $value }}", l, 0, true), "value no data");
  EXPECT_EQ(expandTemplate("no templates", l, 0, false), "no templates");
}

TEST(TemplateTest, RejectsUnknownFields) {
  EXPECT_EQ(checkTemplate("{{ $labels.oem }} {{ $value }}"), "");
  EXPECT_NE(checkTemplate("{{ .Labels.oem }}"), "");
  EXPECT_NE(checkTemplate("{{ $labels. }}"), "");
}

}  // namespace
}  // namespace greenlight::alerts
