// What a thread costs the allocator. The proxy (greenlight-proxy) runs with jemalloc, which gives
// every thread a cache of freed blocks; the other commands run with glibc's malloc.
#pragma once

namespace greenlight {

// Whether this process allocates with jemalloc (the greenlight-proxy build).
bool jemallocLinked();

// For a thread that allocates seldom, such as an admin API worker: under jemalloc it gives up its
// per-thread cache and allocates from the first arena, where the cold threads share their freed
// memory. Each of the admin API's 64 workers otherwise kept about 220 KiB of cached blocks after
// serving a few /metrics scrapes, memory no other thread could use: 200 scrapes grew the proxy by
// 15 MiB. Without jemalloc (glibc, already one arena outside the proxy) it does nothing. Safe to
// call more than once; the work is done the first time on each thread.
void markThreadCold();

// Gives the memory freed so far back to the system now, for a thread that just freed a lot and
// may go quiet (the proxy's event loop after it frees the buffers a burst left). Under jemalloc:
// empties this thread's cache and purges the unused pages of its arena, which jemalloc otherwise
// purges only as that arena allocates again, so a quiet process kept them. Under glibc:
// malloc_trim. Costs a few system calls; not for every request.
void releaseFreedMemory();

}  // namespace greenlight
