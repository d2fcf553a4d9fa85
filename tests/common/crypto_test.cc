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

}  // namespace
}  // namespace greenlight
