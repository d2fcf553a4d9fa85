#include "greenlight/common/thread_memory.h"

#include <malloc.h>

#include <cstddef>
#include <string>

// jemalloc's control entry point: present only in a program linked with it.
extern "C" int mallctl(const char*, void*, size_t*, void*, size_t) __attribute__((weak));

namespace greenlight {

bool jemallocLinked() { return mallctl != nullptr; }

void markThreadCold() {
  thread_local bool cold = false;
  if (cold || !jemallocLinked()) return;
  cold = true;
  // Failures leave the thread as it was: more memory held, nothing wrong.
  bool enabled = false;
  mallctl("thread.tcache.enabled", nullptr, nullptr, &enabled, sizeof enabled);  // flushes the cache
  unsigned arena = 0;
  mallctl("thread.arena", nullptr, nullptr, &arena, sizeof arena);
}

void releaseFreedMemory() {
  if (!jemallocLinked()) {
    ::malloc_trim(0);
    return;
  }
  // Failures leave the memory where it was: held longer, nothing wrong.
  mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);  // fails harmlessly on a cold thread
  unsigned arena = 0;
  size_t size = sizeof arena;
  if (mallctl("thread.arena", &arena, &size, nullptr, 0) != 0) return;
  const std::string purge = "arena." + std::to_string(arena) + ".purge";
  mallctl(purge.c_str(), nullptr, nullptr, nullptr, 0);
}

}  // namespace greenlight
