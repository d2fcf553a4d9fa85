// The probe engine: one thread runs a timer queue and libcurl's multi interface, so thousands of
// probes share one event loop and a slow target never delays another. Other threads talk to it
// through apply() and snapshot(). Thread-safe.
#pragma once

#include <atomic>
#include <memory>
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
};

}  // namespace greenlight::probes
