// The proxy's access log (private to the proxy module): one JSON line per request answered —
// relayed or the proxy's own 4xx/5xx — for on-call engineers asking "what happened to that
// request". Built for the platform's data-protection promise: no query string, no header, no
// body, identifier-like path segments (VINs, UUIDs, numeric ids) written as ":id", and the
// client's address truncated by default.
//
// The event loops never wait for the disk: a line goes into a bounded buffer in memory and a
// writer thread appends it to the file, in batches (64 KiB, or what 100 ms gathered). When the disk falls behind by more than the buffer,
// lines are dropped and counted (greenlight_proxy_access_log_dropped_total) rather than slowing
// traffic down. `reopen` (SIGHUP, POST /-/reload) starts a new file at the configured path after
// logrotate moved the old one.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <prometheus/counter.h>

#include "greenlight/common/status.h"
#include "greenlight/common/time_source.h"
#include "greenlight/proxy/proxy_config.h"

namespace greenlight::proxy {

// `target` (a request target as sent: path and query) as the log writes it: the path alone,
// each segment that looks like an identifier replaced by ":id": all digits, or 8 characters or
// more with at least two digits (a VIN, a UUID, a token; not "v1" or "oauth2").
std::string redactPath(std::string_view target);
// A client address as the log writes it: whole, truncated (IPv4 to its /24, also when mapped
// into IPv6 by a dual-stack listener; IPv6 to its /48; the rest zero), or not at all (empty).
std::string clientForLog(const std::string& ip, AccessLogClient mode);
// Appends `s` to `out` as a JSON string: quoted, escaped (nlohmann's serializer for anything but
// printable ASCII; bytes that are not UTF-8 become U+FFFD).
void appendJsonString(std::string& out, std::string_view s);
// Appends `t` as RFC 3339 in UTC with milliseconds ("2026-11-29T00:10:02.481Z").
void appendLogTime(std::string& out, WallTime t);

class AccessLog {
 public:
  // Opens (creates, mode 0640) `path` for appending and starts the writer thread. Lines lost
  // are also counted in `dropped` (if given).
  static StatusOr<std::unique_ptr<AccessLog>> open(const std::string& path, prometheus::Counter* dropped = nullptr);
  ~AccessLog();  // writes what is buffered, then stops
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Queues one line (without its newline). From any thread; never waits for the disk.
  void add(std::string_view line);
  // Opens the path again (after a rotation moved the file); on failure the old file stays in use.
  Status reopen();
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  const std::string& path() const { return path_; }

  static constexpr size_t kMaxBuffered = 4 << 20;  // bytes waiting for the writer (besides the batch it writes), at most
  // The writer writes when this much waits, or this long after the first line of a batch.
  static constexpr size_t kFlushBytes = 64 << 10;
  static constexpr std::chrono::milliseconds kFlushEvery{100};

 private:
  AccessLog(std::string path, int fd, prometheus::Counter* dropped);
  void run();
  void drop(uint64_t lines);

  const std::string path_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::string pending_;  // lines waiting for the writer
  bool stop_ = false;
  std::mutex fd_mu_;     // the writer's descriptor, swapped by reopen
  int fd_;
  std::atomic<uint64_t> dropped_{0};
  prometheus::Counter* dropped_metric_;
  std::thread writer_;
};

}  // namespace greenlight::proxy
