// Test doubles at the network edge for proxy tests: an HTTP backend that answers with its name
// (and can hold a request until released), and a raw HTTP/1.1 client connection for sending
// exact, hostile or pipelined bytes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

struct ssl_st;
struct ssl_ctx_st;

namespace greenlight::testing {

class TestBackend {
 public:
  // `threads`: requests it serves at once (each keep-alive connection holds one while it lives).
  explicit TestBackend(std::string name, int threads = 16);
  ~TestBackend();
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_; }
  // Client connections that sent a GET (distinct client ports seen): whether a client reuses them.
  int connections() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(client_ports_.size());
  }
  // GET /hold blocks until release() (or the backend stops).
  void release();
  // GET /chunked answers 30,000 bytes in three chunks (no Content-Length).
  // Answer every later request to "/" with this status (500: a broken release).
  void failWith(int status) { fail_status_ = status; }
  // Answer every n-th request to "/" with 500 (n = 5: a release failing 20% of the time).
  // With `only_root`, requests to other paths (/health) neither fail nor count.
  void failEvery(int n, bool only_root = false) {
    fail_only_root_ = only_root;
    fail_every_ = n;
  }
  // Answer every later request to "/" after this long (a release that got slow).
  void slowBy(std::chrono::milliseconds d) { slow_ms_ = static_cast<int>(d.count()); }
  bool holding() const { return holding_ > 0; }
  // GET /healthz (a health check, not counted in requests()) answers this status; 200 at first.
  void healthWith(int status) { health_status_ = status; }
  int healthChecks() const { return health_checks_; }
  struct HealthRequest {
    std::string host, user_agent;
  };
  HealthRequest lastHealthCheck() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_health_;
  }
  void stop();

 private:
  std::string name_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::atomic<int> holding_{0};
  std::atomic<int> fail_status_{0};
  std::atomic<int> fail_every_{0};
  std::atomic<bool> fail_only_root_{false};
  std::atomic<int> root_requests_{0};
  std::atomic<int> slow_ms_{0};
  std::atomic<int> health_status_{200};
  std::atomic<int> health_checks_{0};
  mutable std::mutex mu_;
  HealthRequest last_health_;
  std::set<int> client_ports_;
  std::condition_variable cv_;
  bool released_ = false;
};

struct RawResponse {
  int status = -1;  // -1: connection closed or timed out before a full response
  std::string headers;
  std::string body;
};

// A client connection to 127.0.0.1:port that sends bytes as given, plain or over TLS.
class RawConnection {
 public:
  explicit RawConnection(int port);
  // Over TLS, the server's certificate verified against `ca_file` (the handshake is done here:
  // see ok()).
  RawConnection(int port, const std::string& ca_file);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool ok() const { return fd_ >= 0; }
  bool send(const std::string& bytes);
  // TLS: each piece in a TLS record of its own, all of them in one TCP segment.
  bool sendRecords(const std::vector<std::string>& pieces);
  // Reads one response (Content-Length bodies), waiting at most `timeout`.
  RawResponse read(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Reads exactly `n` bytes that follow what read() took ("" on a close or after `timeout`).
  std::string readBytes(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // True if the peer closes the connection within `timeout`.
  bool closedWithin(std::chrono::milliseconds timeout);

 private:
  // Appends what arrives within `timeout` to buffer_; false on a close, an error or the timeout.
  bool receive(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  ssl_ctx_st* ctx_ = nullptr;
  ssl_st* ssl_ = nullptr;
  std::string buffer_;
};

}  // namespace greenlight::testing
