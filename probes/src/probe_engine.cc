#include "greenlight/probes/probe_engine.h"

#include <future>

namespace greenlight::probes {

ProbeEngine::ProbeEngine(const TimeSource& time, RandomSource& random)
    : time_(time),
      timers_(time),
      metrics_(std::make_shared<ProbeMetrics>()),
      manager_(transport_, timers_, random, metrics_) {
  // A timer scheduled from another thread must wake the loop out of poll().
  timers_.setWakeup([this] {
    if (std::this_thread::get_id() != loop_id_.load()) transport_.wakeup();
  });
}

ProbeEngine::~ProbeEngine() { stop(); }

void ProbeEngine::start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void ProbeEngine::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  transport_.wakeup();
  thread_.join();
  manager_.stopAll();
  std::map<uint64_t, OnceDone> pending;
  {
    std::lock_guard<std::mutex> lock(once_mu_);
    pending.swap(once_);
  }
  for (auto& [id, done] : pending) done(std::nullopt);
}

void ProbeEngine::runOnce(const std::string& name, Headers extra, OnceDone done) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(once_mu_);
    if (stopping_) {
      id = 0;
    } else {
      id = ++next_once_;
      once_[id] = std::move(done);
    }
  }
  if (id == 0) {
    done(std::nullopt);
    return;
  }
  post([this, id, name, extra = std::move(extra)] {
    manager_.runOnce(name, extra, [this, id](std::optional<ProbeResult> r) { finishOnce(id, std::move(r)); });
  });
}

void ProbeEngine::finishOnce(uint64_t id, std::optional<ProbeResult> result) {
  OnceDone done;
  {
    std::lock_guard<std::mutex> lock(once_mu_);
    auto it = once_.find(id);
    if (it == once_.end()) return;
    done = std::move(it->second);
    once_.erase(it);
  }
  done(std::move(result));
}

void ProbeEngine::post(std::function<void()> fn) { timers_.scheduleAt(MonoTime::min(), std::move(fn)); }

void ProbeEngine::apply(std::vector<ProbeSpec> specs) {
  if (!thread_.joinable()) {
    manager_.apply(std::move(specs));
    return;
  }
  std::promise<void> applied;
  post([this, &specs, &applied] {
    manager_.apply(std::move(specs));
    applied.set_value();
  });
  applied.get_future().wait();
}

void ProbeEngine::addListener(ResultListener listener) {
  if (!thread_.joinable()) {
    manager_.addListener(std::move(listener));
    return;
  }
  std::promise<void> added;
  post([this, &listener, &added] {
    manager_.addListener(std::move(listener));
    added.set_value();
  });
  added.get_future().wait();
}

void ProbeEngine::loop() {
  loop_id_ = std::this_thread::get_id();
  while (!stopping_) {
    timers_.runDue();
    transport_.perform();
    const Duration wait = timers_.waitFor(time_.monotonicNow(), std::chrono::seconds(1));
    // Round up to the millisecond poll() understands, so a timer 0.3 ms away is not a busy loop.
    if (wait > Duration(0)) transport_.poll(wait + std::chrono::microseconds(999));
  }
}

}  // namespace greenlight::probes
