#include "greenlight/common/logging.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace greenlight {
namespace {

// Captures what the process writes to stderr while `fn` runs.
std::string captureStderr(const std::function<void()>& fn) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/stderr.txt";
  fflush(stderr);
  int saved = dup(2);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(fd, 2);
  close(fd);
  fn();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  return testing::readFile(path);
}

TEST(Logging, JsonLinesAreValidJsonWithEscapedMessages) {
  const std::string out = captureStderr([] {
    ASSERT_TRUE(initLogging(LogFormat::kJson, "info").ok());
    spdlog::info("probe \"bmw\" failed:\nreason {}", "status");
    spdlog::debug("not shown at info");
    spdlog::default_logger()->flush();
  });
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["msg"], "probe \"bmw\" failed:\nreason status");
  EXPECT_EQ(j["ts"].get<std::string>().size(), 24u);  // 2026-11-27T03:19:08.999Z
}

TEST(Logging, TextFormatAndBadLevel) {
  const std::string out = captureStderr([] {
    ASSERT_TRUE(initLogging(LogFormat::kText, "warn").ok());
    spdlog::info("hidden");
    spdlog::warn("shown");
    spdlog::default_logger()->flush();
  });
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_NE(out.find("warning shown"), std::string::npos) << out;
  EXPECT_FALSE(initLogging(LogFormat::kText, "loud").ok());
}

TEST(Logging, RedactsSecretsInEveryShapeTheyAppear) {
  const auto& d = defaultRedactedFields();
  const std::pair<std::string, std::string> cases[] = {
      {"request headers: Authorization: Bearer eyJhbGciOi.abc, Accept: */*", "Authorization: Bearer [REDACTED], Accept: */*"},
      {"body {\"access_token\":\"tok-123\",\"expires_in\":3600}", "{\"access_token\":\"[REDACTED]\",\"expires_in\":3600}"},
      {"POST grant_type=client_credentials&client_secret=s3cr3t&scope=x", "grant_type=client_credentials&client_secret=[REDACTED]&scope=x"},
      {"CLIENT_SECRET = hunter2 end", "CLIENT_SECRET = [REDACTED] end"},
      {"{'password': 'pa ss'}", "{'password': '[REDACTED]'}"},
      {"token \"alice\" has viewer", "token \"alice\" has viewer"},      // a token's name is not a secret
      {"my_access_token_count=3", "my_access_token_count=3"},            // part of another word
      {"no secrets here", "no secrets here"},
  };
  for (const auto& [in, want] : cases) {
    const std::string got = redactSecrets(in, d);
    EXPECT_NE(got.find(want), std::string::npos) << in << "\n -> " << got;
  }
  EXPECT_EQ(redactSecrets("vin=WBA123 odometer=52000", {"vin"}), "vin=[REDACTED] odometer=52000");
}

TEST(Logging, EveryLineGoesThroughTheRedactionWithConfiguredFields) {
  const std::string out = captureStderr([] {
    ASSERT_TRUE(initLogging(LogFormat::kJson, "info", {"vin"}).ok());
    spdlog::warn("upstream said {{\"access_token\": \"abc123\"}} for vin=WBA0000001");
    spdlog::default_logger()->flush();
  });
  EXPECT_EQ(out.find("abc123"), std::string::npos) << out;
  EXPECT_EQ(out.find("WBA0000001"), std::string::npos) << out;
  EXPECT_NE(out.find("[REDACTED]"), std::string::npos) << out;
  EXPECT_TRUE(nlohmann::json::accept(out)) << out;
}

}  // namespace
}  // namespace greenlight
