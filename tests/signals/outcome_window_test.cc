#include "greenlight/signals/outcome_window.h"

#include <gtest/gtest.h>

namespace greenlight::signals {
namespace {

using namespace std::chrono_literals;

MonoTime at(Duration d) { return MonoTime{} + d; }

TEST(OutcomeWindowTest, CountsOutcomesInsideTheWindow) {
  OutcomeWindow w(60s, 60, false);
  for (int i = 0; i < 10; ++i) w.observe(at(std::chrono::seconds(i)), i % 5 != 0, 0);
  const auto s = w.stats(at(9s), 60s);
  EXPECT_EQ(s.total, 10u);
  EXPECT_EQ(s.failures, 2u);
  EXPECT_DOUBLE_EQ(s.failureRatio(), 0.2);
}

TEST(OutcomeWindowTest, ForgetsWhatIsOlderThanTheWindow) {
  OutcomeWindow w(60s, 60, false);
  w.observe(at(0s), false, 0);
  w.observe(at(30s), true, 0);
  EXPECT_EQ(w.stats(at(59s), 60s).total, 2u);
  EXPECT_EQ(w.stats(at(61s), 60s).total, 1u);  // the failure at 0 s has aged out
  EXPECT_EQ(w.stats(at(61s), 60s).failures, 0u);
  EXPECT_EQ(w.stats(at(200s), 60s).total, 0u);
}

TEST(OutcomeWindowTest, ShorterQueryWindowSeesOnlyRecentBuckets) {
  OutcomeWindow w(60s, 60, false);
  w.observe(at(0s), false, 0);
  w.observe(at(50s), true, 0);
  EXPECT_EQ(w.stats(at(55s), 10s).total, 1u);
}

TEST(OutcomeWindowTest, MemoryIsBoundedByBucketsNotByObservations) {
  OutcomeWindow w(10s, 10, false);
  for (int i = 0; i < 100000; ++i) w.observe(at(std::chrono::milliseconds(i)), true, 0);
  // 100 s of observations; only the last ~10 s are counted.
  const auto s = w.stats(at(100s), 10s);
  EXPECT_LE(s.total, 11000u);
  EXPECT_GE(s.total, 9000u);
}

TEST(OutcomeWindowTest, LatencyQuantileInterpolatesLikeHistogramQuantile) {
  OutcomeWindow w(60s, 60, true);
  for (int i = 1; i <= 100; ++i) w.observe(at(1s), true, i / 1000.0);  // 1..100 ms
  const double p50 = w.latencyQuantile(at(1s), 60s, 0.5);
  const double p99 = w.latencyQuantile(at(1s), 60s, 0.99);
  EXPECT_NEAR(p50, 0.050, 0.050 * 0.25);  // within one 25% bucket
  EXPECT_NEAR(p99, 0.099, 0.099 * 0.25);
  EXPECT_LT(p50, p99);
  EXPECT_LT(w.latencyQuantile(at(200s), 60s, 0.5), 0);  // no data
}

TEST(OutcomeWindowTest, WithoutLatencyTrackingQuantileIsNoData) {
  OutcomeWindow w(60s, 60, false);
  w.observe(at(1s), true, 0.5);
  EXPECT_LT(w.latencyQuantile(at(1s), 60s, 0.5), 0);
}

TEST(BucketQuantileTest, InterpolatesInsideTheBinHoldingTheRank) {
  const std::vector<double> bounds = {0.1, 0.2, 0.4};
  // 10 in (0, 0.1], 10 in (0.1, 0.2], none in (0.2, 0.4], none above.
  EXPECT_DOUBLE_EQ(bucketQuantile(bounds, {10, 10, 0, 0}, 0.5), 0.1);
  EXPECT_DOUBLE_EQ(bucketQuantile(bounds, {10, 10, 0, 0}, 0.75), 0.15);
  EXPECT_DOUBLE_EQ(bucketQuantile(bounds, {0, 0, 4, 0}, 0.25), 0.25);
  // Above the last bound: the last bound, as histogram_quantile answers for +Inf.
  EXPECT_DOUBLE_EQ(bucketQuantile(bounds, {1, 0, 0, 99}, 0.99), 0.4);
  EXPECT_LT(bucketQuantile(bounds, {0, 0, 0, 0}, 0.5), 0);  // no data
}

}  // namespace
}  // namespace greenlight::signals
