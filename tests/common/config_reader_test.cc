#include "greenlight/common/config_reader.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace greenlight {
namespace {

using testing::fakeEnv;

TEST(ConfigReader, UnknownKeyIsAnErrorWithPosition) {
  ConfigErrors errors;
  ConfigReader r("c.yaml", errors, fakeEnv({}));
  auto root = r.loadString("a: 1\nintervall: 5s\n");
  ASSERT_TRUE(root);
  EXPECT_TRUE(r.expectMap(*root, "", {"a", "interval"}));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors.all()[0].toString(),
            "c.yaml:2:1: intervall: unknown key (expected one of: a, interval)");
}

TEST(ConfigReader, DurationErrorSaysWhatWasExpected) {
  ConfigErrors errors;
  ConfigReader r("c.yaml", errors, fakeEnv({}));
  auto root = r.loadString("probe:\n  interval: 30\n");
  auto d = r.getDuration((*root)["probe"], "probes[3]", "interval");
  EXPECT_FALSE(d);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors.all()[0].toString(),
            "c.yaml:2:13: probes[3].interval: expected a duration like \"30s\", \"500ms\" or "
            "\"5m\", got \"30\"");
}

TEST(ConfigReader, SyntaxErrorHasLineAndColumn) {
  ConfigErrors errors;
  ConfigReader r("bad.yaml", errors, fakeEnv({}));
  EXPECT_FALSE(r.loadString("a: [1, 2\nb: 3\n"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors.all()[0].file, "bad.yaml");
  EXPECT_GT(errors.all()[0].line, 0);
  EXPECT_NE(errors.all()[0].message.find("YAML syntax error"), std::string::npos);
}

TEST(ConfigReader, ExpandsEnvironmentVariables) {
  ConfigErrors errors;
  ConfigReader r("c.yaml", errors, fakeEnv({{"SECRET", "s3cr3t"}, {"HOST", "example"}}));
  auto root = r.loadString("url: https://${HOST}/x?k=${SECRET}\nlit: a$${b}\n");
  EXPECT_EQ(r.getString(*root, "", "url"), "https://example/x?k=s3cr3t");
  EXPECT_EQ(r.getString(*root, "", "lit"), "a${b}");
  EXPECT_TRUE(errors.empty());
}

TEST(ConfigReader, ExpandsEnvironmentVariablesInListItems) {
  ConfigErrors errors;
  ConfigReader r("c.yaml", errors, fakeEnv({{"BLUE", "10.0.0.1:80"}}));
  auto root = r.loadString("blue: ['${BLUE}', '${NOPE}']\n");
  EXPECT_EQ(r.getStringList(*root, "", "blue"), std::vector<std::string>{"10.0.0.1:80"});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors.all()[0].toString().find("blue[1]: ${NOPE}"), std::string::npos) << errors.format();
}

TEST(ConfigReader, UnsetVariableIsAnErrorUnlessKept) {
  ConfigErrors errors;
  ConfigReader r("c.yaml", errors, fakeEnv({}));
  auto root = r.loadString("a: Bearer ${token}\nb: ${MISSING}\n");
  std::set<std::string> keep = {"token"};
  EXPECT_EQ(r.getString(*root, "", "a", false, &keep), "Bearer ${token}");
  EXPECT_FALSE(r.getString(*root, "", "b", false, &keep));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors.all()[0].toString().find("c.yaml:2:4: b: ${MISSING} is neither"), std::string::npos);
}

TEST(ConfigReader, CollectsEveryErrorNotJustTheFirst) {
  ConfigErrors errors;
  ConfigReader r("c.yaml", errors, fakeEnv({}));
  auto root = r.loadString("n: abc\nb: maybe\nd: 1x\nreq: \n");
  (void)r.getInt(*root, "", "n", 0, 10);
  (void)r.getBool(*root, "", "b");
  (void)r.getDuration(*root, "", "d");
  (void)r.getString(*root, "", "missing", /*required=*/true);
  EXPECT_EQ(errors.size(), 4u) << errors.format();
}

TEST(ConfigReader, IntRangeIsChecked) {
  ConfigErrors errors;
  ConfigReader r("c.yaml", errors, fakeEnv({}));
  auto root = r.loadString("n: 0\n");
  EXPECT_FALSE(r.getInt(*root, "x", "n", 1, 10));
  EXPECT_EQ(errors.all()[0].message, "expected a whole number from 1 to 10, got \"0\"");
}

}  // namespace
}  // namespace greenlight
