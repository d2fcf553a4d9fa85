// The spare blocks an event loop keeps: what steady use needs stays, what a burst left is freed.
#include "../../proxy/src/spare_pool.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace greenlight::proxy {
namespace {

// Counts the blocks alive, to see frees.
struct Block {
  explicit Block(int& alive) : alive_(alive) { ++alive_; }
  ~Block() { --alive_; }
  int& alive_;
};

void giveNew(SparePool<Block>& pool, int& alive, int n) {
  for (int i = 0; i < n; ++i) {
    auto b = std::make_unique<Block>(alive);
    ASSERT_TRUE(pool.give(b));
  }
}

// n requests at once: n blocks taken, then all given back.
void useAtOnce(SparePool<Block>& pool, int n) {
  std::vector<std::unique_ptr<Block>> busy;
  for (int i = 0; i < n; ++i) busy.push_back(pool.take());
  for (auto& b : busy) ASSERT_TRUE(pool.give(b));
}

TEST(SparePool, TakeReturnsTheBlockGivenBackLastAndNullWhenEmpty) {
  int alive = 0;
  SparePool<Block> pool(4);
  EXPECT_EQ(pool.take(), nullptr);
  auto a = std::make_unique<Block>(alive);
  auto b = std::make_unique<Block>(alive);
  Block* second = b.get();
  ASSERT_TRUE(pool.give(a));
  ASSERT_TRUE(pool.give(b));
  EXPECT_EQ(pool.take().get(), second);  // the most recently used: warm in the cache
  EXPECT_EQ(pool.size(), 1u);
}

TEST(SparePool, AFullPoolLeavesTheBlockWithTheCaller) {
  int alive = 0;
  SparePool<Block> pool(2);
  giveNew(pool, alive, 2);
  auto extra = std::make_unique<Block>(alive);
  EXPECT_FALSE(pool.give(extra));
  EXPECT_NE(extra, nullptr);
  EXPECT_EQ(pool.size(), 2u);
  EXPECT_EQ(alive, 3);
}

TEST(SparePool, WhatABurstLeftIsFreedWithinTwoTrimsOfItsEnd) {
  int alive = 0;
  SparePool<Block> pool(64);
  EXPECT_EQ(pool.trim(), 0u);
  giveNew(pool, alive, 40);  // a burst ends: 40 requests' blocks given back
  EXPECT_EQ(pool.trim(), 0u);  // given back within this period: they get a whole period more
  EXPECT_EQ(alive, 40);
  EXPECT_EQ(pool.trim(), 40u);  // nobody took one since
  EXPECT_EQ(pool.size(), 0u);
  EXPECT_EQ(alive, 0);
}

TEST(SparePool, SteadyUseKeepsTheBlocksItNeedsAndFreesTheRest) {
  int alive = 0;
  SparePool<Block> pool(64);
  giveNew(pool, alive, 10);
  pool.trim();  // start of a period with 10 kept
  // Up to 4 requests at once during the period: 6 blocks were never needed.
  for (int round = 0; round < 3; ++round) useAtOnce(pool, 4);
  EXPECT_EQ(pool.trim(), 6u);
  EXPECT_EQ(pool.size(), 4u);
  EXPECT_EQ(alive, 4);
  // The same load next period: nothing more to free.
  useAtOnce(pool, 4);
  EXPECT_EQ(pool.trim(), 0u);
  EXPECT_EQ(alive, 4);
}

TEST(SparePool, TheOldestBlocksAreFreedTheRecentlyUsedKept) {
  int alive = 0;
  SparePool<Block> pool(8);
  giveNew(pool, alive, 3);
  pool.trim();
  auto b = pool.take();
  Block* used = b.get();
  ASSERT_TRUE(pool.give(b));
  EXPECT_EQ(pool.trim(), 2u);
  EXPECT_EQ(pool.take().get(), used);
}

}  // namespace
}  // namespace greenlight::proxy
