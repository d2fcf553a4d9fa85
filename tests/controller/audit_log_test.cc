#include "greenlight/controller/audit_log.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/test_support.h"

namespace greenlight::controller {
namespace {

std::vector<std::string> lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}
void writeLines(const std::string& path, const std::vector<std::string>& ls) {
  std::ofstream out(path, std::ios::trunc);
  for (const auto& l : ls) out << l << "\n";
}

std::string threeEntries(const testing::TempDir& dir, SimulatedTimeSource& clock) {
  const std::string path = dir.path() + "/audit.log";
  auto log = AuditLog::open(path, clock);
  EXPECT_TRUE(log.ok());
  EXPECT_TRUE(log.value()->append({"alice", "start", "vehicles", "v2", "v2 on green", {}, {}}).ok());
  EXPECT_TRUE(log.value()->append({"controller", "set_weights", "vehicles", "v2", "green 10%, blue 90%",
                                   std::array<int, 2>{100, 0}, std::array<int, 2>{90, 10}}).ok());
  EXPECT_TRUE(log.value()->append({"bob", "abort", "vehicles", "v2", "customer reports", {}, {}}).ok());
  return path;
}

TEST(AuditLogTest, AnIntactChainVerifiesAndContinuesAcrossReopen) {
  testing::TempDir dir;
  SimulatedTimeSource clock;
  const std::string path = threeEntries(dir, clock);
  EXPECT_TRUE(verifyAuditLog(path).ok);
  auto again = AuditLog::open(path, clock);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(again.value()->append({"alice", "start", "vehicles", "v3", "", {}, {}}).ok());
  const auto v = verifyAuditLog(path);
  EXPECT_TRUE(v.ok) << v.why;
  EXPECT_EQ(v.lines, 4u);
}

TEST(AuditLogTest, EditedLineIsDetected) {
  testing::TempDir dir;
  SimulatedTimeSource clock;
  const std::string path = threeEntries(dir, clock);
  auto ls = lines(path);
  ls[1].replace(ls[1].find("green 10%"), 9, "green 99%");
  writeLines(path, ls);
  const auto v = verifyAuditLog(path);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_line, 2u);
  EXPECT_NE(v.why.find("edited"), std::string::npos);
  auto reopened = AuditLog::open(path, clock);
  EXPECT_FALSE(reopened.ok()) << "appending to a broken chain would hide the break";
}

TEST(AuditLogTest, TrafficChangesCarryWeightsBeforeAndAfterUnderTheChain) {
  testing::TempDir dir;
  SimulatedTimeSource clock;
  const std::string path = threeEntries(dir, clock);
  auto ls = lines(path);
  const auto j = nlohmann::json::parse(ls[1]);
  EXPECT_EQ(j["weights_before"], (nlohmann::json{{"blue", 100}, {"green", 0}}));
  EXPECT_EQ(j["weights_after"], (nlohmann::json{{"blue", 90}, {"green", 10}}));
  EXPECT_FALSE(nlohmann::json::parse(ls[0]).contains("weights_after"));
  // Rewriting what the weights were is an edit like any other.
  ls[1].replace(ls[1].find("\"green\":0"), 9, "\"green\":5");
  writeLines(path, ls);
  EXPECT_EQ(verifyAuditLog(path).first_bad_line, 2u);
}

TEST(AuditLogTest, RemovedOrReorderedLineIsDetected) {
  testing::TempDir dir;
  SimulatedTimeSource clock;
  const std::string path = threeEntries(dir, clock);
  auto ls = lines(path);
  writeLines(path, {ls[0], ls[2]});
  EXPECT_EQ(verifyAuditLog(path).first_bad_line, 2u);
  writeLines(path, {ls[1], ls[0], ls[2]});
  EXPECT_EQ(verifyAuditLog(path).first_bad_line, 1u);
}

}  // namespace
}  // namespace greenlight::controller
