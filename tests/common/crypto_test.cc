#include "greenlight/common/crypto.h"

#include <gtest/gtest.h>

namespace greenlight {
namespace {

TEST(Crypto, Sha256OfKnownInput) {
  auto d = sha256("abc");
  EXPECT_EQ(toHex(d.data(), d.size()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, HexRoundTripAndRejects) {
  Sha256Digest d{};
  EXPECT_TRUE(sha256FromHex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &d));
  EXPECT_TRUE(constantTimeEqual(d, sha256("abc")));
  EXPECT_FALSE(constantTimeEqual(d, sha256("abd")));
  EXPECT_FALSE(sha256FromHex("zz", &d));
  EXPECT_FALSE(sha256FromHex(std::string(64, 'g'), &d));
}

TEST(Crypto, SaltedTokenHashesVerifyAndDifferEachTime) {
  const std::string token = "a-long-random-token-0123456789";
  const std::string a = hashToken(token), b = hashToken(token);
  EXPECT_NE(a, b) << "a fresh salt each time";
  EXPECT_EQ(a.rfind("sha256:", 0), 0u);
  EXPECT_EQ(a.find(token), std::string::npos);
  TokenHash h;
  ASSERT_TRUE(parseTokenHash(a, &h));
  EXPECT_EQ(h.salt.size(), 16u);
  EXPECT_TRUE(constantTimeEqual(saltedSha256(h.salt, token), h.digest));
  EXPECT_FALSE(constantTimeEqual(saltedSha256(h.salt, token + "x"), h.digest));
  EXPECT_FALSE(constantTimeEqual(sha256(token), h.digest)) << "not the unsalted hash";
  for (const char* bad : {"", "sha256:", "md5:00:00", "sha256:zz:00", "sha256:00112233445566778899aabbccddeeff:abc",
                          "sha256:0011:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}) {
    EXPECT_FALSE(parseTokenHash(bad, &h)) << bad;
  }
}

}  // namespace
}  // namespace greenlight
