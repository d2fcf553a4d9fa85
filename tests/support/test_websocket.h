// WebSocket test doubles (Boost.Beast): an echo backend that prefixes each answer with its name,
// and a client that can echo and then watch for its connection being closed, recording when.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace greenlight::testing {

using SteadyTime = std::chrono::steady_clock::time_point;
SteadyTime steadyNow();

class WebSocketBackend {
 public:
  explicit WebSocketBackend(std::string name);
  ~WebSocketBackend();
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_; }
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::atomic<int> accepted_{0};
};

class WebSocketClient {
 public:
  // Connects to 127.0.0.1:port and does the WebSocket handshake for `path`.
  WebSocketClient(int port, const std::string& path = "/live");
  ~WebSocketClient();
  bool ok() const { return ok_; }
  // Sends `message` and returns the answer ("" if the connection failed).
  std::string echo(const std::string& message);
  // From now on a background reader waits for the connection to close.
  void watchForClose();
  bool closed() const { return closed_; }
  SteadyTime closedAt() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool ok_ = false;
  std::atomic<bool> closed_{false};
  std::thread watcher_;
  mutable std::mutex mu_;
  SteadyTime closed_at_{};
};

}  // namespace greenlight::testing
