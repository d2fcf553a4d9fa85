#include "greenlight/probes/condition.h"

#include <gtest/gtest.h>

namespace greenlight::probes {
namespace {

using namespace std::chrono_literals;

struct Obs {
  int status = 200;
  Duration rt = 120ms;
  std::string body = R"({"data":{"odometer":{"distance":1234.5,"unit":"km"}},
    "items":[{"id":"abc"},{"id":"def"}],"vehicles":["v1","v2","v3"],"status":"up",
    "count":"42","flag":true,"nothing":null,"empty":[]})";
  std::optional<Duration> cert = 100h;
};

void fill(Observation& o, const Obs& in) {
  o.connected = true;
  o.status = in.status;
  o.response_time = in.rt;
  o.body = in.body;
  o.ip = "127.0.0.1";
  o.certificate_expires_in = in.cert;
  o.headers = {{"content-type", "application/json; charset=utf-8"}, {"x-request-id", "r-1"}};
}

struct Case {
  const char* condition;
  bool passes;
  const char* actual;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.condition; }

class ConditionTable : public ::testing::TestWithParam<Case> {};

TEST_P(ConditionTable, EvaluatesAsExpected) {
  const Case& c = GetParam();
  auto parsed = parseCondition(c.condition);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  Observation o;
  Obs in;
  fill(o, in);
  ConditionOutcome out = evaluate(*parsed, o);
  EXPECT_EQ(out.passed, c.passes) << c.condition << " actual=" << out.actual << " error=" << out.error;
  EXPECT_EQ(out.actual, c.actual) << c.condition;
  EXPECT_EQ(out.condition, c.condition);
}

INSTANTIATE_TEST_SUITE_P(
    Gatus, ConditionTable,
    ::testing::Values(
        Case{"[STATUS] == 200", true, "200"}, Case{"[STATUS] != 200", false, "200"},
        Case{"[STATUS] < 500", true, "200"}, Case{"[STATUS] >= 300", false, "200"},
        Case{"[status] == 200", true, "200"},  // placeholders are case-insensitive
        Case{"[RESPONSE_TIME] < 800", true, "120"}, Case{"[RESPONSE_TIME] < 100", false, "120"},
        Case{"[RESPONSE_TIME] <= 1s", true, "120"},
        Case{"[BODY].data.odometer.distance > 0", true, "1234.5"},
        Case{"[BODY].data.odometer.unit == km", true, "km"},
        Case{"[BODY].items[0].id == abc", true, "abc"}, Case{"[BODY].items[1].id == abc", false, "def"},
        Case{"[BODY].items[5].id == abc", false, "<missing>"},
        Case{"[HEADER].content-type == pat(application/json*)", true, "application/json; charset=utf-8"},
        Case{"[HEADER].Content-Type == pat(text/*)", false, "application/json; charset=utf-8"},
        Case{"[HEADER].x-missing == pat(*)", false, "<missing>"},
        Case{"[CERTIFICATE_EXPIRATION] > 72h", true, "100h"},
        Case{"[CERTIFICATE_EXPIRATION] > 168h", false, "100h"},
        Case{"len([BODY].vehicles) > 0", true, "3"}, Case{"len([BODY].vehicles) == 3", true, "3"},
        Case{"len([BODY].empty) > 0", false, "0"}, Case{"len([BODY].status) == 2", true, "2"},
        Case{"[BODY].status == any(ok, up)", true, "up"}, Case{"[BODY].status == any(ok, green)", false, "up"},
        Case{"[BODY].status != any(down, degraded)", true, "up"},
        Case{"has([BODY].data.odometer) == true", true, "true"},
        Case{"has([BODY].data.battery) == false", true, "false"},
        Case{"[CONNECTED] == true", true, "true"}, Case{"[IP] == 127.0.0.1", true, "127.0.0.1"},
        Case{"[BODY].count > 40", true, "42"},  // numeric strings compare as numbers
        Case{"[BODY].flag == true", true, "true"}, Case{"[BODY].nothing == null", true, "null"}));

TEST(Condition, WholeBodyMatchesAPattern) {
  Observation o;
  Obs in;
  fill(o, in);
  auto c = parseCondition("[BODY] == pat(*odometer*)");
  EXPECT_TRUE(evaluate(*c, o).passed);
  auto not_there = parseCondition("[BODY] == pat(*battery*)");
  EXPECT_FALSE(evaluate(*not_there, o).passed);
}

TEST(Condition, ComparisonWithNonNumberIsAFailureWithTheValueNotAZero) {
  auto c = parseCondition("[BODY].status > 5");
  ASSERT_TRUE(c.ok());
  Observation o;
  Obs in;
  fill(o, in);
  auto out = evaluate(*c, o);
  EXPECT_FALSE(out.passed);
  EXPECT_EQ(out.actual, "up");
  EXPECT_EQ(out.error, "\"up\" is not a number");
}

TEST(Condition, InvalidJsonBodyIsReportedAndClassified) {
  auto c = parseCondition("[BODY].data.odometer.distance > 0");
  ASSERT_TRUE(c.ok());
  Observation o;
  Obs in;
  in.body = "<html>oops</html>";
  fill(o, in);
  auto out = evaluate(*c, o);
  EXPECT_FALSE(out.passed);
  EXPECT_EQ(out.error, "the body is not valid JSON");
  EXPECT_EQ(reasonFor(*c, out), FailureReason::kInvalidBody);
}

TEST(Condition, MissingCertificateIsAnExplicitFailure) {
  auto c = parseCondition("[CERTIFICATE_EXPIRATION] > 72h");
  Observation o;
  Obs in;
  in.cert.reset();
  fill(o, in);
  auto out = evaluate(*c, o);
  EXPECT_FALSE(out.passed);
  EXPECT_EQ(out.error, "no certificate was presented");
  EXPECT_EQ(reasonFor(*c, out), FailureReason::kCertificate);
}

TEST(Condition, ReasonFollowsThePlaceholder) {
  Observation o;
  Obs in;
  in.status = 503;
  in.rt = 2s;
  fill(o, in);
  auto status = parseCondition("[STATUS] == 200");
  auto latency = parseCondition("[RESPONSE_TIME] < 800");
  auto body = parseCondition("[BODY].status == down");
  EXPECT_EQ(reasonFor(*status, evaluate(*status, o)), FailureReason::kStatus);
  EXPECT_EQ(reasonFor(*latency, evaluate(*latency, o)), FailureReason::kLatency);
  EXPECT_EQ(reasonFor(*body, evaluate(*body, o)), FailureReason::kCondition);
}

struct BadCase {
  const char* condition;
  const char* error_contains;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.condition; }

class BadConditionTable : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConditionTable, IsAClearErrorNotACrash) {
  auto parsed = parseCondition(GetParam().condition);
  ASSERT_FALSE(parsed.ok()) << GetParam().condition;
  EXPECT_NE(parsed.status().message().find(GetParam().error_contains), std::string::npos)
      << parsed.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    BadInput, BadConditionTable,
    ::testing::Values(
        BadCase{"[STATUS]==200", "expected LEFT OP RIGHT"},
        BadCase{"", "expected LEFT OP RIGHT"},
        BadCase{"[STAUTS] == 200", "unknown placeholder [STAUTS]"},
        BadCase{"STATUS == 200", "the left side must be a placeholder"},
        BadCase{"[STATUS] < abc", "expected a number or a duration"},
        BadCase{"[BODY].items[x] == 1", "array index must be a number"},
        BadCase{"[BODY].items[0 == 1", "missing \"]\""},
        BadCase{"[BODY]..a == 1", "empty key"},
        BadCase{"[HEADER] == x", "[HEADER] needs a header name"},
        BadCase{"[STATUS]x == 200", "unexpected \"x\" after [STATUS]"},
        BadCase{"len([STATUS]) > 1", "len() applies to [BODY] or [HEADER]"},
        BadCase{"len(abc) > 1", "len() takes a placeholder"},
        BadCase{"[STATUS] < pat(2*)", "pat() and any() go with == or != only"},
        BadCase{"[BODY].a == any()", "any() needs a comma-separated list"},
        BadCase{"[CERTIFICATE_EXPIRATION] == soon", "compare [CERTIFICATE_EXPIRATION] with a duration"},
        BadCase{"len([BODY].a > 1", "missing \")\""}));

TEST(Glob, Matches) {
  EXPECT_TRUE(globMatch("application/json*", "application/json; charset=utf-8"));
  EXPECT_TRUE(globMatch("*", ""));
  EXPECT_TRUE(globMatch("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(globMatch("a*b*c", "aXXbYY"));
  EXPECT_TRUE(globMatch("exact", "exact"));
  EXPECT_FALSE(globMatch("exact", "exactly"));
}

TEST(Capture, ResolvesTextOrNothing) {
  Observation o;
  Obs in;
  fill(o, in);
  auto c = parseCondition("[BODY].items[1].id == x");
  EXPECT_EQ(resolveText(c->left, o), "def");
  auto missing = parseCondition("[BODY].nope == x");
  EXPECT_FALSE(resolveText(missing->left, o).has_value());
  auto header = parseCondition("[HEADER].x-request-id == x");
  EXPECT_EQ(resolveText(header->left, o), "r-1");
}

}  // namespace
}  // namespace greenlight::probes
