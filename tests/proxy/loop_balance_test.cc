// Which event loop a new client connection lives on: the one that accepted it, unless another
// holds fewer by more than the slack.
#include <gtest/gtest.h>

#include <vector>

#include "../../proxy/src/loop_balance.h"

namespace greenlight::proxy {
namespace {

size_t pick(size_t accepting, const std::vector<double>& held, double slack) {
  return balancedLoop(accepting, held.size(), [&](size_t i) { return held[i]; }, slack);
}

TEST(LoopBalance, TheAcceptingLoopKeepsTheConnectionWhileItHoldsNoMoreThanTheSlackAboveTheFewest) {
  EXPECT_EQ(pick(0, {0, 0}, 2), 0u);
  EXPECT_EQ(pick(1, {5, 7}, 2), 1u);
  EXPECT_EQ(pick(0, {7, 5, 9}, 2), 0u);
}

TEST(LoopBalance, AConnectionGoesToTheLoopHoldingTheFewestWhenTheAcceptingOneHoldsMore) {
  EXPECT_EQ(pick(0, {3, 0}, 2), 1u);
  EXPECT_EQ(pick(2, {6, 4, 9, 5}, 2), 1u);
  EXPECT_EQ(pick(1, {0, 1}, 0), 0u);
}

TEST(LoopBalance, ConnectionsAcceptedAllOnOneLoopEndSpreadWithinTheSlack) {
  // A burst that wakes only loop 0: it accepts all 64, as it did before the balance.
  std::vector<double> held(2, 0);
  for (int k = 0; k < 64; ++k) held[pick(0, held, 2)] += 1;
  EXPECT_EQ(held[0], 33);
  EXPECT_EQ(held[1], 31);
}

TEST(LoopBalance, OneLoopKeepsEveryConnection) {
  EXPECT_EQ(pick(0, {1000}, 2), 0u);
}

}  // namespace
}  // namespace greenlight::proxy
