// The probe engine: one thread runs a timer queue and libcurl's multi interface, so thousands of
// probes share one event loop and a slow target never delays another. Other threads talk to it
// through apply() and snapshot(). Thread-safe.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "greenlight/common/random.h"
#include "greenlight/common/scheduler.h"
#include "greenlight/probes/curl_transport.h"
#include "greenlight/probes/probe_manager.h"

namespace greenlight::probes {

class ProbeEngine {
 public:
  ProbeEngine(const TimeSource& time, RandomSource& random);
  ~ProbeEngine();

  void start();
  void stop();
  // Replaces the running probes (from any thread); waits until the loop has taken them.
  void apply(std::vector<ProbeSpec> specs);
  // Runs fn on the loop thread (from any thread), e.g. to add a result listener.
  void post(std::function<void()> fn);
  // Adds a listener called on the loop thread after every probe result (from any thread).
  void addListener(ResultListener listener);
  // The loop's timers: a component that shares the loop (alerting) schedules on it.
  Scheduler& scheduler() { return timers_; }
  std::vector<ProbeStatus> snapshot() const { return manager_.snapshot(); }
  // ProbeManager::runOnce from any thread; `done` runs exactly once, on the loop thread, or
  // with nullopt from stop() if the engine stops first.
  void runOnce(const std::string& name, Headers extra, OnceDone done);
  std::shared_ptr<ProbeMetrics> metrics() const { return metrics_; }

 private:
  void loop();
  const TimeSource& time_;
  TimerQueue timers_;
  CurlTransport transport_;
  std::shared_ptr<ProbeMetrics> metrics_;
  ProbeManager manager_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::thread::id> loop_id_{};
  std::mutex once_mu_;
  std::map<uint64_t, OnceDone> once_;  // runOnce callbacks not called yet
  uint64_t next_once_ = 0;
  void finishOnce(uint64_t id, std::optional<ProbeResult> result);
};

}  // namespace greenlight::probes
