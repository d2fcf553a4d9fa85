#include "greenlight/probes/health.h"

#include <gtest/gtest.h>

#include <string>

namespace greenlight::probes {
namespace {

// Feeds a run of results ('.' pass, 'x' fail) and returns the health letters after each.
std::string trace(HealthPolicy p, const std::string& runs) {
  HealthState s;
  std::string out;
  for (char c : runs) {
    s = nextHealth(p, s, c == '.');
    out += s.health == Health::kHealthy ? 'H' : s.health == Health::kUnhealthy ? 'U' : '?';
  }
  return out;
}

TEST(Health, TableOfSequences) {
  struct Case {
    int fail, succeed;
    const char* runs;
    const char* want;
  } cases[] = {
      {1, 1, ".x.", "HUH"},
      {3, 1, "xxx", "??U"},
      {3, 1, ".xx.xxx", "HHHHHHU"},   // a pass in between resets the failure count
      {2, 2, "xx.x..", "?UUUUH"},     // recovery needs two passes in a row
      {3, 2, ".", "H"},               // from unknown one pass is enough
      {1, 3, "x...", "UUUH"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(trace({c.fail, c.succeed}, c.runs), c.want) << c.runs;
  }
}

TEST(Health, TransitionsAreReportedOnce) {
  HealthPolicy p{2, 1};
  HealthState s0;
  auto s1 = nextHealth(p, s0, true);
  EXPECT_EQ(transitionOf(s0, s1), HealthTransition::kBecameHealthy);
  auto s2 = nextHealth(p, s1, false);
  EXPECT_EQ(transitionOf(s1, s2), HealthTransition::kNone);
  auto s3 = nextHealth(p, s2, false);
  EXPECT_EQ(transitionOf(s2, s3), HealthTransition::kBecameUnhealthy);
  auto s4 = nextHealth(p, s3, false);
  EXPECT_EQ(transitionOf(s3, s4), HealthTransition::kNone);
  EXPECT_EQ(s4.consecutive_failures, 3);
}

}  // namespace
}  // namespace greenlight::probes
