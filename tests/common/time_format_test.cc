#include "greenlight/common/time_format.h"

#include <gtest/gtest.h>

namespace greenlight {
namespace {

WallTime t(const char* s) { return parseRfc3339(s).value(); }

TEST(TimeFormatTest, Rfc3339RoundTrips) {
  EXPECT_EQ(formatRfc3339(t("2026-11-26T10:00:00Z")), "2026-11-26T10:00:00Z");
  EXPECT_EQ(formatRfc3339(t("2026-11-26T10:05:30.250Z")), "2026-11-26T10:05:30.250Z");
  EXPECT_EQ(formatRfc3339(WallTime{}), "0001-01-01T00:00:00Z");
  EXPECT_EQ(t("2026-11-26T10:00:00Z") - t("2026-11-26T09:59:59.5Z"), std::chrono::milliseconds(500));
}

TEST(TimeFormatTest, RejectsWhatIsNotUtcRfc3339) {
  for (const char* bad : {"2026-11-26 10:00", "2026-11-26T10:00:00+01:00", "yesterday", "", "2026-11-26T10:00:00Zjunk"}) {
    EXPECT_FALSE(parseRfc3339(bad).has_value()) << bad;
  }
}

TEST(TimeFormatTest, UnixMillisRoundTrip) {
  const WallTime x = t("2026-11-26T10:05:30.250Z");
  EXPECT_EQ(fromUnixMillis(toUnixMillis(x)), x);
  EXPECT_EQ(toUnixMillis(WallTime{}), 0);
}

}  // namespace
}  // namespace greenlight
