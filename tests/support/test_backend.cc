#include "support/test_backend.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "greenlight/common/http_listen.h"
#include "support/test_support.h"

namespace greenlight::testing {

TestBackend::TestBackend(std::string name, int threads)
    : name_(std::move(name)), server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server_->set_tcp_nodelay(true);
  listenExclusively(*server_);
  server_->Get("/hold", [this](const httplib::Request&, httplib::Response& res) {
    ++requests_;
    ++holding_;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(30), [this] { return released_; });
    --holding_;
    res.set_content(name_ + "-held", "text/plain");
  });
  server_->Get("/healthz", [this](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_health_ = {req.get_header_value("Host"), req.get_header_value("User-Agent")};
    }
    ++health_checks_;
    res.status = health_status_;
    res.set_content(name_ + (res.status < 400 ? "-healthy" : "-sick"), "text/plain");
  });
  server_->Get("/chunked", [this](const httplib::Request& req, httplib::Response& res) {
    ++requests_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      client_ports_.insert(req.remote_port);
    }
    res.set_chunked_content_provider("application/octet-stream", [](size_t offset, httplib::DataSink& sink) {
      if (offset >= 30000) {
        sink.done();
        return true;
      }
      const std::string piece(10000, 'x');
      return sink.write(piece.data(), piece.size());
    });
  });
  server_->Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
    const int n = ++requests_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      client_ports_.insert(req.remote_port);
    }
    if (slow_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms_.load()));  // the release's own slowness
    const int counted = fail_only_root_ ? (req.path == "/" ? ++root_requests_ : -1) : n;
    if (fail_every_ > 0 && counted > 0 && counted % fail_every_ == 0) {
      res.status = 500;
      res.set_content(name_ + "-failed", "text/plain");
      return;
    }
    if (fail_status_ != 0) {
      res.status = fail_status_;
      res.set_content(name_ + "-failed", "text/plain");
      return;
    }
    res.set_header("X-Seen-Forwarded-For", req.get_header_value("X-Forwarded-For"));
    res.set_header("X-Seen-Via", req.get_header_value("Via"));
    res.set_header("X-Seen-Forwarded-Proto", req.get_header_value("X-Forwarded-Proto"));
    res.set_header("X-Seen-Request-Id", req.get_header_value("X-Request-Id"));
    res.set_header("X-Request-Id", name_ + "-own");  // an upstream's id of its own (the proxy's replaces it)
    res.set_content(name_, "text/plain");
  });
  server_->Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
    ++requests_;
    res.set_content(name_ + ":" + req.body, "text/plain");
  });
  port_ = server_->bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  waitUntil([this] { return server_->is_running(); });
}

TestBackend::~TestBackend() { stop(); }

void TestBackend::release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
  }
  cv_.notify_all();
}

void TestBackend::stop() {
  if (!thread_.joinable()) return;
  release();
  server_->stop();
  thread_.join();
}

RawConnection::RawConnection(int port) : fd_(connectLoopback(port)) {}

RawConnection::RawConnection(int port, const std::string& ca_file) : fd_(connectLoopback(port)) {
  if (fd_ < 0) return;
  ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  ssl_ = SSL_new(ctx_);
  SSL_set_fd(ssl_, fd_);
  const timeval limit{5, 0};  // a blocking read of a record never waits past this
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  if (SSL_connect(ssl_) != 1) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawConnection::~RawConnection() {
  if (ssl_) SSL_free(ssl_);
  if (ctx_) SSL_CTX_free(ctx_);
  if (fd_ >= 0) close(fd_);
}

bool RawConnection::send(const std::string& bytes) {
  if (ssl_) return fd_ >= 0 && SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) == static_cast<int>(bytes.size());
  size_t done = 0;
  while (fd_ >= 0 && done < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return fd_ >= 0;
}

bool RawConnection::sendRecords(const std::vector<std::string>& pieces) {
  if (!ssl_ || fd_ < 0) return false;
  int on = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on);  // held back until the last piece
  bool sent = true;
  for (const auto& p : pieces) sent = sent && send(p);
  on = 0;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
  return sent;
}

bool RawConnection::receive(std::chrono::steady_clock::time_point deadline) {
  if (fd_ < 0) return false;
  if (!ssl_ || SSL_pending(ssl_) == 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  }
  char buf[16384];
  const ssize_t n = ssl_ ? SSL_read(ssl_, buf, sizeof buf) : recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) return false;
  buffer_.append(buf, static_cast<size_t>(n));
  return true;
}

RawResponse RawConnection::read(std::chrono::milliseconds timeout) {
  RawResponse r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto end = buffer_.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::string head = buffer_.substr(0, end + 2);
      size_t length = 0;
      std::string lower = head;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto cl = lower.find("content-length:");
      if (cl != std::string::npos) length = std::stoul(lower.substr(cl + 15));
      if (buffer_.size() >= end + 4 + length) {
        r.status = std::stoi(head.substr(9, 3));
        r.headers = head;
        r.body = buffer_.substr(end + 4, length);
        buffer_.erase(0, end + 4 + length);
        return r;
      }
    }
    if (!receive(deadline)) return r;
  }
}

std::string RawConnection::readBytes(size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (buffer_.size() < n) {
    if (!receive(deadline)) return "";
  }
  std::string out = buffer_.substr(0, n);
  buffer_.erase(0, n);
  return out;
}

bool RawConnection::closedWithin(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (fd_ >= 0) {
    if (!receive(deadline)) return std::chrono::steady_clock::now() < deadline;
  }
  return true;
}

}  // namespace greenlight::testing
