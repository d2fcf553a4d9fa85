// The proxy's routing table at rest with state_encryption: sealed on disk, restored after a
// restart, and a tampered file stops the start with the file's name instead of being half-read.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "greenlight/app/proxy_service.h"
#include "greenlight/common/sealed.h"
#include "support/test_backend.h"
#include "support/test_support.h"

namespace greenlight::proxy {
namespace {

TEST(EncryptedState, TheRoutingTableIsSealedRestoredAndRefusedWhenTampered) {
  testing::TempDir dir;
  testing::TestBackend blue("blue"), green("green");
  const std::string key = dir.write("state.key", newKeyHex());
  ::chmod(key.c_str(), 0600);
  const std::string routes = dir.path() + "/routes.json";
  const std::string config = dir.write("proxy.yaml", "log: {level: warn}\nadmin: {listen: 127.0.0.1:0}\n"
      "state_encryption: {key_file: " + key + "}\nproxy:\n  state_file: " + routes + "\n"
      "  services:\n    - name: vehicles\n      listen: 127.0.0.1:0\n      blue: [" + blue.address() + "]\n"
      "      green: [" + green.address() + "]\n      weights: {blue: 100, green: 0}\n");
  {
    auto svc = app::ProxyService::start(config, 0);
    ASSERT_TRUE(svc.ok()) << svc.status().message();
    ASSERT_TRUE((*svc)->store().execute("set weight vehicles blue 0 green 100", "test").ok);
  }
  const std::string on_disk = testing::readFile(routes);
  EXPECT_TRUE(isSealed(on_disk));
  EXPECT_EQ(on_disk.find("vehicles"), std::string::npos) << "nothing readable at rest";
  {
    auto svc = app::ProxyService::start(config, 0);
    ASSERT_TRUE(svc.ok()) << svc.status().message();
    EXPECT_EQ((*svc)->store().current()->services.at("vehicles").weight[1], 100) << "restored from the sealed file";
  }
  std::string tampered = testing::readFile(routes);
  tampered[tampered.size() - 3] = static_cast<char>(tampered[tampered.size() - 3] ^ 0x40);
  dir.write("routes.json", tampered);
  auto refused = app::ProxyService::start(config, 0);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find(routes), std::string::npos) << refused.status().message();
  EXPECT_NE(refused.status().message().find("authentication failed"), std::string::npos) << refused.status().message();
  dir.write("routes.json", "{\"version\": 9, \"services\": {}}");
  auto plain = app::ProxyService::start(config, 0);
  ASSERT_FALSE(plain.ok()) << "a plain file slipped in is not trusted";
  EXPECT_NE(plain.status().message().find("not encrypted"), std::string::npos) << plain.status().message();
}

}  // namespace
}  // namespace greenlight::proxy
