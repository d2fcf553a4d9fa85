// Built and linked with jemalloc (as greenlight-proxy is) when the build has it.
#include "greenlight/common/thread_memory.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "greenlight/common/admin_server.h"
#include "support/test_support.h"

extern "C" int mallctl(const char*, void*, size_t*, void*, size_t);

namespace greenlight {
namespace {

bool threadCacheEnabled() {
  bool enabled = false;
  size_t size = sizeof enabled;
  EXPECT_EQ(mallctl("thread.tcache.enabled", &enabled, &size, nullptr, 0), 0);
  return enabled;
}

unsigned threadArena() {
  unsigned arena = 0;
  size_t size = sizeof arena;
  EXPECT_EQ(mallctl("thread.arena", &arena, &size, nullptr, 0), 0);
  return arena;
}

TEST(ThreadMemory, AColdThreadHasNoCacheAndTheFirstArenaOthersKeepTheirs) {
  ASSERT_TRUE(jemallocLinked());
  bool before = false, after = true, twice = true, other = false;
  unsigned arena = 1;
  std::thread cold([&] {
    before = threadCacheEnabled();
    markThreadCold();
    after = threadCacheEnabled();
    arena = threadArena();
    markThreadCold();  // again: nothing changes
    twice = threadCacheEnabled();
  });
  cold.join();
  std::thread hot([&] { other = threadCacheEnabled(); });
  hot.join();
  EXPECT_TRUE(before);
  EXPECT_FALSE(after);
  EXPECT_EQ(arena, 0u);
  EXPECT_FALSE(twice);
  EXPECT_TRUE(other);  // a thread not marked keeps its cache
}

// jemalloc's resident bytes (its stats refreshed).
size_t residentBytes() {
  uint64_t epoch = 1;
  size_t size = sizeof epoch;
  EXPECT_EQ(mallctl("epoch", &epoch, &size, &epoch, sizeof epoch), 0);
  size_t resident = 0;
  size = sizeof resident;
  EXPECT_EQ(mallctl("stats.resident", &resident, &size, nullptr, 0), 0);
  return resident;
}

// A quiet thread's freed memory goes back to the system when asked: jemalloc would otherwise
// purge it only as the thread's arena allocates again. 2,000 buffers of 24 KiB, as a burst of
// requests leaves the proxy's event loop, freed and then released.
TEST(ThreadMemory, ReleasingFreedMemoryGivesTheThreadsFreedPagesBack) {
  ASSERT_TRUE(jemallocLinked());
  size_t freed = 0, released = 0;
  std::thread loop([&] {
    std::vector<std::unique_ptr<char[]>> buffers;
    for (int i = 0; i < 2000; ++i) {
      buffers.emplace_back(new char[24 << 10]);
      std::memset(buffers.back().get(), 1, 24 << 10);  // resident
    }
    buffers.clear();
    freed = residentBytes();
    releaseFreedMemory();
    released = residentBytes();
  });
  loop.join();
  EXPECT_GT(freed, released + (40u << 20)) << "freed: " << freed << " bytes resident, released: " << released;
}

// The admin API's workers are cold from their first connection on: with a cache each, 64
// workers serving scrapes held about 15 MiB.
TEST(ThreadMemory, AdminApiWorkersAreCold) {
  AdminServerOptions o;
  o.port = 0;
  auto created = AdminServer::create(std::move(o));
  ASSERT_TRUE(created.ok()) << created.status().message();
  auto& server = *created.value();
  server.handle("GET", "/worker", Role::kNone, [](const AdminRequest&) {
    return jsonResponse(200, std::string("{\"cache\":") + (threadCacheEnabled() ? "true" : "false") +
                                 ",\"arena\":" + std::to_string(threadArena()) + "}");
  });
  ASSERT_TRUE(server.start().ok());
  for (int i = 0; i < 8; ++i) {  // connections one after another, served by whichever workers
    const auto r = testing::httpGet(server.port(), "/worker");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"cache\":false,\"arena\":0}");
  }
  server.stop();
}

}  // namespace
}  // namespace greenlight
