// Delivery that survives receiver outages and restarts: every payload goes into an outbox that
// is written to disk (atomically, fsync'd) before it is sent, and leaves it only once the
// receiver accepted it or refused it for good. A kill -9 loses nothing: the next start sends
// what is left. Back-off is exponential with jitter, a receiver's Retry-After wins, and an
// entry older than `max_age` is dropped with an error (it would be stale news).
// Thread-safe: enqueue() from any thread; deliveries run on the Deliverer's own thread.
#pragma once

#include "greenlight/common/sealed.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "greenlight/alerts/notifier.h"
#include "greenlight/common/random.h"

namespace greenlight::alerts {

struct OutboxEntry {
  std::string id;
  std::string receiver;
  Payload payload;
  WallTime created{};
  WallTime first_alert_start{};  // for the failure-to-notification latency
  int attempts = 0;
  WallTime next_attempt{};
  std::string last_error;
  // The group the notification came from and what its receiver knows once it is delivered
  // (fingerprint -> firing), so a restart can tell a queued notification from an unsent one.
  std::string group_key;
  std::map<std::string, bool> sent;
  uint64_t seq = 0;    // enqueue order
  bool held = false;   // in memory only: not sent before release()
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual HttpReply send(const HttpRequestSpec& request) = 0;
};
std::unique_ptr<HttpClient> makeCurlHttpClient();

struct RetryPolicy {
  Duration initial{std::chrono::seconds(1)};
  Duration max{std::chrono::minutes(5)};
  Duration max_age{std::chrono::hours(24)};
};

class Deliverer {
 public:
  // `state_file` empty: the outbox lives in memory only.
  Deliverer(const TimeSource& time, RandomSource& random, std::unique_ptr<HttpClient> http,
            std::string state_file, RetryPolicy retry, prometheus::Registry& registry,
            std::optional<AesKey> state_key = std::nullopt);
  ~Deliverer();

  // Loads what a previous run left; an unreadable file is an error (nothing is half-read).
  Status load();
  void setReceivers(std::map<std::string, std::shared_ptr<const Notifier>> receivers);
  // Encodes and stores the payloads of `n` (on disk before this returns). Returns how many.
  // They are held: the sender takes them after release(), so the caller can record that it
  // notified before the receiver may hear it (see AlertEngine).
  size_t enqueue(const Notification& n, const EncodeContext& ctx);
  void release();  // wakes the sender for everything enqueued
  void start();
  void stop();
  size_t depth() const;
  std::vector<OutboxEntry> entries() const;  // in enqueue order

  // The entry to send now, if any, and (in `next`) when one is due next: the earliest due of
  // those released, whose receiver exists, and with no older entry of the same group and
  // receiver still waiting.
  static const OutboxEntry* pickDue(const std::map<uint64_t, OutboxEntry>& entries,
                                    const std::function<bool(const std::string&)>& has_receiver, WallTime now,
                                    WallTime& next);

 private:
  void loop();
  Status persistLocked();
  void removeLocked(uint64_t seq);
  Duration backoff(int attempts, std::optional<Duration> asked);

  struct ReceiverMetrics {
    prometheus::Counter* sent = nullptr;
    prometheus::Counter* failed = nullptr;
    prometheus::Counter* retried = nullptr;
    prometheus::Counter* dropped = nullptr;
  };
  ReceiverMetrics& metricsFor(const std::string& receiver);

  const TimeSource& time_;
  RandomSource& random_;
  std::unique_ptr<HttpClient> http_;
  std::string state_file_;
  std::optional<AesKey> state_key_;
  RetryPolicy retry_;
  prometheus::Registry& registry_;
  prometheus::Family<prometheus::Counter>* notifications_;
  prometheus::Gauge* depth_;
  prometheus::Histogram* latency_;
  std::map<std::string, ReceiverMetrics> receiver_metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<const Notifier>> receivers_;
  std::map<uint64_t, OutboxEntry> entries_;  // by seq
  uint64_t next_id_ = 1;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace greenlight::alerts
