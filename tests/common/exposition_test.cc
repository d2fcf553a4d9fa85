#include "greenlight/common/exposition.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace greenlight {
namespace {

TEST(Exposition, EscapesLabelValues) {
  EXPECT_EQ(ExpositionWriter::labelPrefix({{"probe", "a\"b\\c\nd"}, {"oem", "bmw"}}),
            "{probe=\"a\\\"b\\\\c\\nd\",oem=\"bmw\"");
  EXPECT_EQ(ExpositionWriter::labelPrefix({}), "");
}

TEST(Exposition, FormatsValues) {
  auto fmt = [](double v) {
    std::string s;
    ExpositionWriter::appendValue(s, v);
    return s;
  };
  EXPECT_EQ(fmt(200), "200");
  EXPECT_EQ(fmt(1700000000), "1700000000");
  EXPECT_EQ(fmt(0.04), "0.04");
  EXPECT_EQ(fmt(-1), "-1");
  EXPECT_EQ(fmt(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(fmt(std::nan("")), "NaN");
}

TEST(Exposition, WritesSamplesAndHistograms) {
  static const std::vector<double> bounds = {0.1, 1};
  FixedHistogram h(&bounds);
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  std::string out;
  ExpositionWriter w(out);
  w.header("x_seconds", "Help text", "histogram");
  w.histogram("x_seconds", "{probe=\"a\"", h);
  w.sample("y", "", "", 1);
  w.sample("z", "", "phase=\"tls\"", 2);
  EXPECT_EQ(out,
            "# HELP x_seconds Help text\n# TYPE x_seconds histogram\n"
            "x_seconds_bucket{probe=\"a\",le=\"0.1\"} 1\n"
            "x_seconds_bucket{probe=\"a\",le=\"1\"} 2\n"
            "x_seconds_bucket{probe=\"a\",le=\"+Inf\"} 3\n"
            "x_seconds_sum{probe=\"a\"} 5.55\n"
            "x_seconds_count{probe=\"a\"} 3\n"
            "y 1\n"
            "z{phase=\"tls\"} 2\n");
}

}  // namespace
}  // namespace greenlight
