#include "greenlight/common/thread_memory.h"

#include <cstddef>

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

}  // namespace greenlight
