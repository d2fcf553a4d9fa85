#include "greenlight/common/sealed.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "greenlight/common/files.h"
#include "support/test_support.h"

namespace greenlight {
namespace {

AesKey testKey(char fill) {
  auto k = keyFromHex(std::string(64, fill));
  EXPECT_TRUE(k.ok());
  return k.value();
}

TEST(Sealed, RoundTripsAndHidesThePlaintext) {
  const AesKey key = testKey('a');
  const std::string plain = "client_secret: s3cr3t\nvin: WBA12345678901234\n";
  const std::string sealed = seal(key, plain, "secrets");
  EXPECT_TRUE(isSealed(sealed));
  EXPECT_EQ(sealed.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(sealed.find("WBA"), std::string::npos);
  EXPECT_NE(seal(key, plain, "secrets"), sealed) << "a fresh nonce every time";
  auto back = unseal(key, sealed, "secrets");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back.value(), plain);
}

TEST(Sealed, AnyChangedByteWrongKeyOrPurposeIsRefusedWhole) {
  const AesKey key = testKey('b');
  const std::string sealed = seal(key, "rollout state: green 100", "state:rollouts");
  for (size_t i = 7; i < sealed.size(); ++i) {  // nonce, ciphertext and tag
    std::string bad = sealed;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    auto r = unseal(key, bad, "state:rollouts");
    ASSERT_FALSE(r.ok()) << "byte " << i;
    EXPECT_NE(r.status().message().find("authentication failed"), std::string::npos);
  }
  EXPECT_FALSE(unseal(testKey('c'), sealed, "state:rollouts").ok()) << "another key";
  EXPECT_FALSE(unseal(key, sealed, "secrets").ok()) << "a state file cannot stand in for the secrets file";
  EXPECT_FALSE(unseal(key, sealed.substr(0, sealed.size() - 1), "state:rollouts").ok()) << "cut short";
  EXPECT_FALSE(unseal(key, sealed.substr(0, 20), "state:rollouts").ok());
  EXPECT_FALSE(unseal(key, "{\"plain\": true}", "state:rollouts").ok());
}

TEST(Sealed, KeysComeFromAPrivateFileOrTheEnvironment) {
  testing::TempDir dir;
  const std::string hex = newKeyHex();
  ASSERT_EQ(hex.size(), 64u);
  const std::string path = dir.write("key", hex + "\n");
  ::chmod(path.c_str(), 0644);
  auto loose = loadKeyFile(path);
  ASSERT_FALSE(loose.ok());
  EXPECT_NE(loose.status().message().find("chmod 600"), std::string::npos);
  ::chmod(path.c_str(), 0600);
  EXPECT_TRUE(loadKeyFile(path).ok());
  auto env = testing::fakeEnv({{"GL_KEY", hex}, {"SHORT", "abc"}});
  EXPECT_TRUE(loadKey(KeySource{"", "GL_KEY"}, env).ok());
  EXPECT_FALSE(loadKey(KeySource{"", "SHORT"}, env).ok());
  EXPECT_FALSE(loadKey(KeySource{"", "MISSING"}, env).ok());
}

TEST(Sealed, SecretsFileRoundTripsNamesAndValues) {
  testing::TempDir dir;
  const AesKey key = testKey('d');
  const std::string path = dir.path() + "/secrets.enc";
  ASSERT_TRUE(writeSecretsFile(path, {{"client_secret", "s: 3\"cr3t"}, {"pagerduty", "R0UT1NG"}}, key).ok());
  auto raw = readWholeFile(path);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw.value().find("R0UT1NG"), std::string::npos);
  auto back = readSecretsFile(path, key);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back.value().at("client_secret"), "s: 3\"cr3t");
  EXPECT_EQ(back.value().at("pagerduty"), "R0UT1NG");
}

TEST(Sealed, ConfigsReadSecretsByNameAndNeverPrintAValue) {
  testing::TempDir dir;
  const std::string hex = newKeyHex();
  const std::string key_path = dir.write("key", hex);
  ::chmod(key_path.c_str(), 0600);
  auto key = loadKeyFile(key_path);
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(writeSecretsFile(dir.path() + "/secrets.enc", {{"token", "t0ps3cret"}}, key.value()).ok());
  const std::string config = "secrets: {file: secrets.enc, key_file: " + key_path + "}\nvalue: \"Bearer ${secret:token}\"\nother: \"${secret:nope}\"\n";
  const std::string path = dir.write("c.yaml", config);
  ConfigErrors errors;
  ConfigReader r(path, errors, testing::fakeEnv({}));
  auto root = r.loadFile();
  ASSERT_TRUE(root);
  loadSecretsSection(r, (*root)["secrets"], "secrets");
  EXPECT_EQ(r.getString(*root, "", "value").value_or(""), "Bearer t0ps3cret");
  EXPECT_FALSE(r.getString(*root, "", "other").has_value());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors.format().find("no secret named \"nope\""), std::string::npos) << errors.format();
  EXPECT_EQ(errors.format().find("t0ps3cret"), std::string::npos);
}

}  // namespace
}  // namespace greenlight

namespace greenlight {
namespace {

TEST(StateFile, SealedWithAKeyPlainWithoutAndNeverMixed) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/rollouts.json";
  const std::optional<AesKey> key = testKey('e');
  EXPECT_EQ(readStateFile(path, key, "rollouts").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(writeStateFile(path, "{\"phase\":\"shifting\"}", key, "rollouts").ok());
  EXPECT_EQ(testing::readFile(path).find("shifting"), std::string::npos);
  auto back = readStateFile(path, key, "rollouts");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back.value(), "{\"phase\":\"shifting\"}");
  auto no_key = readStateFile(path, std::nullopt, "rollouts");
  ASSERT_FALSE(no_key.ok());
  EXPECT_NE(no_key.status().message().find("configure state_encryption"), std::string::npos);
  EXPECT_FALSE(readStateFile(path, key, "alerts").ok()) << "one state file cannot stand in for another";
  ASSERT_TRUE(writeStateFile(path, "{\"phase\":\"idle\"}", std::nullopt, "rollouts").ok());
  auto plain_with_key = readStateFile(path, key, "rollouts");
  ASSERT_FALSE(plain_with_key.ok());
  EXPECT_NE(plain_with_key.status().message().find(path), std::string::npos);
}

}  // namespace
}  // namespace greenlight
