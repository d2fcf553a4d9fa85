#include "greenlight/common/duration.h"

#include <gtest/gtest.h>

namespace greenlight {
namespace {

using namespace std::chrono_literals;

TEST(ParseDuration, AcceptsUnitsAndCombinations) {
  struct Case {
    const char* text;
    Duration want;
  } cases[] = {
      {"500ms", 500ms}, {"30s", 30s},      {"5m", 5min},          {"72h", 72h},
      {"1h30m", 90min}, {"1.5s", 1500ms},  {"7d", 7 * 24h},       {"250us", 250us},
      {"0s", 0s},       {"1m30s", 90s},    {"10ns", Duration(10)},
  };
  for (const auto& c : cases) {
    auto got = parseDuration(c.text);
    ASSERT_TRUE(got.has_value()) << c.text;
    EXPECT_EQ(*got, c.want) << c.text;
  }
}

TEST(ParseDuration, RejectsBareNumbersAndJunk) {
  for (const char* bad : {"", "30", "s", "5 m", "1x", "-1s", "1s2", "ms5", "1e400s"}) {
    EXPECT_FALSE(parseDuration(bad).has_value()) << bad;
  }
}

TEST(FormatDuration, RoundTrips) {
  for (Duration d : {Duration(250ms), Duration(30s), Duration(90s), Duration(72h), Duration(1500ms)}) {
    auto text = formatDuration(d);
    ASSERT_TRUE(parseDuration(text).has_value()) << text;
    EXPECT_EQ(*parseDuration(text), d) << text;
  }
  EXPECT_EQ(formatDuration(90min), "1h30m");
  EXPECT_EQ(formatDuration(250ms), "250ms");
}

}  // namespace
}  // namespace greenlight
