#include "greenlight/common/json_body.h"

#include <gtest/gtest.h>

namespace greenlight {
namespace {

TEST(JsonBody, AcceptsAnOrdinaryObject) {
  const JsonBody b = parseJsonBody(R"({"release": "v2", "reason": "ok"})");
  ASSERT_TRUE(b.status.ok()) << b.status.message();
  EXPECT_EQ(b.value["release"], "v2");
}

TEST(JsonBody, HostileBodiesAreRefusedWithAReasonAndNoEcho) {
  const std::string deep = std::string(30000, '[') + std::string(30000, ']');
  std::string wide = "[";
  for (int i = 0; i < 10000; ++i) wide += "0,";
  wide += "0]";
  const struct {
    std::string body;
    int status;
    std::string why;
  } cases[] = {
      {deep, 400, "nested deeper than 8 levels"},
      {wide, 400, "more than 4096 values"},
      {std::string(70 * 1024, ' '), 413, "larger than"},
      {"{\"reason\": \"\xff\xfe secret\"}", 400, "not valid JSON (at byte"},
      {"{\"a\": 1,}", 400, "not valid JSON"},
      {"", 400, "not valid JSON"},
  };
  for (const auto& c : cases) {
    const JsonBody b = parseJsonBody(c.body);
    EXPECT_FALSE(b.status.ok()) << c.why;
    EXPECT_EQ(b.http_status, c.status) << c.why;
    EXPECT_NE(b.status.message().find(c.why), std::string::npos) << b.status.message();
    EXPECT_EQ(b.status.message().find("secret"), std::string::npos) << "the body is not quoted back";
    EXPECT_TRUE(b.value.is_null());
  }
}

TEST(JsonBody, LimitsAreTheCallersToChoose) {
  JsonLimits tight;
  tight.max_depth = 1;
  EXPECT_TRUE(parseJsonBody(R"({"a": 1})", tight).status.ok());
  EXPECT_FALSE(parseJsonBody(R"({"a": {"b": 1}})", tight).status.ok());
}

}  // namespace
}  // namespace greenlight
