// Bodies are streamed, not buffered, both ways; WebSocket (Upgrade) connections are tunnelled,
// and those to a colour that went to weight 0 are closed gradually after a grace period.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <numeric>

#include "proxy/proxy_fixture.h"
#include "support/test_websocket.h"

namespace greenlight::proxy {
namespace {

using testing::WebSocketBackend;
using testing::WebSocketClient;

// An HTTP backend for streaming: /stream sends a first chunk, then waits for release() before
// the rest; POST /upload counts the body as it arrives.
class StreamingBackend {
 public:
  StreamingBackend() {
    server_.Get("/stream", [this](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("text/plain", [this](size_t offset, httplib::DataSink& sink) {
        if (offset == 0) {
          sink.write("first-chunk;", 12);
          return true;
        }
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::seconds(20), [this] { return released_; });
        const std::string rest(256 << 10, 'x');
        for (int i = 0; i < 4; ++i) sink.write(rest.data(), rest.size());
        sink.done();
        return true;
      });
    });
    server_.Get("/big", [](const httplib::Request&, httplib::Response& res) {
      std::string body(5 << 20, '\0');
      for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 23);
      res.set_content(body, "application/octet-stream");
    });
    server_.Post("/upload", [this](const httplib::Request&, httplib::Response& res, const httplib::ContentReader& reader) {
      size_t total = 0;
      uint64_t sum = 0;
      reader([&](const char* data, size_t n) {
        total += n;
        for (size_t i = 0; i < n; ++i) sum += static_cast<unsigned char>(data[i]);
        upload_bytes_ = total;
        return true;
      });
      res.set_content(std::to_string(total) + " " + std::to_string(sum), "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~StreamingBackend() {
    release();
    server_.stop();
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  size_t uploadBytes() const { return upload_bytes_; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::atomic<size_t> upload_bytes_{0};
};

// A plain socket to the proxy: bytes in, bytes out, with a deadline on every read.
class Socket {
 public:
  explicit Socket(int port) : fd_(testing::connectLoopback(port)) {
    timeval tv{10, 0};
    if (fd_ >= 0) setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool send(const std::string& s) { return fd_ >= 0 && ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size()); }
  // Reads until `needle` has arrived (true) or the peer closes / 10 s pass (false).
  bool readUntil(const std::string& needle) {
    char buf[65536];
    while (received_.find(needle) == std::string::npos) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      received_.append(buf, size_t(n));
    }
    return true;
  }
  const std::string& received() const { return received_; }

 private:
  int fd_;
  std::string received_;
};

// The proxy stops before the backend, so the backend need not wait out its pooled keep-alive
// connections.
class StreamingTest : public ProxyTest {
 protected:
  void TearDown() override { svc_.reset(); }
  StreamingBackend backend;
};

TEST_F(StreamingTest, AResponseBodyIsStreamedAsTheUpstreamSendsIt) {
  start(backend.address(), green_.address());
  Socket c(port_);
  ASSERT_TRUE(c.send("GET /stream HTTP/1.1\r\nHost: v\r\n\r\n"));
  // The first chunk reaches the client while the upstream is still holding the rest: the proxy
  // did not wait for the whole body.
  ASSERT_TRUE(c.readUntil("first-chunk;")) << c.received();
  backend.release();
  ASSERT_TRUE(c.readUntil("\r\n0\r\n\r\n")) << "the chunked body ends properly";
  EXPECT_NE(c.received().find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_GT(c.received().size(), size_t(1 << 20)) << c.received().substr(0, 300);
}

TEST_F(StreamingTest, ARequestBodyIsStreamedAsTheClientSendsIt) {
  start(backend.address(), green_.address());
  Socket c(port_);
  ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n"));
  // The upstream sees the first chunk before the client has sent the rest.
  ASSERT_TRUE(testing::waitUntil([&] { return backend.uploadBytes() >= 16; }));
  const std::string rest(100000, 'z');
  char size[16];
  snprintf(size, sizeof size, "%zx", rest.size());
  ASSERT_TRUE(c.send(std::string(size) + "\r\n" + rest + "\r\n0\r\n\r\n"));
  ASSERT_TRUE(c.readUntil("\r\n\r\n"));
  uint64_t sum = std::accumulate(rest.begin(), rest.end(), uint64_t{0}, [](uint64_t a, char ch) { return a + uint8_t(ch); });
  for (char ch : std::string("0123456789abcdef")) sum += uint8_t(ch);
  ASSERT_TRUE(c.readUntil(std::to_string(16 + rest.size()) + " " + std::to_string(sum))) << c.received();
}

TEST_F(StreamingTest, LargeBodiesArriveIntactBothWays) {
  start(backend.address(), green_.address());
  httplib::Client cli("127.0.0.1", port_);
  cli.set_read_timeout(20, 0);
  auto big = cli.Get("/big");
  ASSERT_TRUE(big);
  ASSERT_EQ(big->status, 200);
  ASSERT_EQ(big->body.size(), size_t(5 << 20));
  for (size_t i = 0; i < big->body.size(); i += 4099) ASSERT_EQ(big->body[i], static_cast<char>('a' + i % 23)) << i;
  std::string upload(3 << 20, '\0');
  for (size_t i = 0; i < upload.size(); ++i) upload[i] = static_cast<char>(i * 7);
  const uint64_t sum = std::accumulate(upload.begin(), upload.end(), uint64_t{0}, [](uint64_t a, char ch) { return a + uint8_t(ch); });
  auto up = cli.Post("/upload", upload, "application/octet-stream");  // Content-Length, over the buffering limit
  ASSERT_TRUE(up);
  EXPECT_EQ(up->status, 200);
  EXPECT_EQ(up->body, std::to_string(upload.size()) + " " + std::to_string(sum));
}

TEST_F(StreamingTest, AStreamedBodyOverTheLimitIsRefusedWith413) {
  start(backend.address(), green_.address(), "  max_body_bytes: 200000\n");
  Socket c(port_);
  const std::string chunk(150000, 'q');
  ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\n\r\n249f0\r\n" + chunk + "\r\n249f0\r\n" +
                     chunk + "\r\n0\r\n\r\n"));
  ASSERT_TRUE(c.readUntil("\r\n\r\n")) << c.received();
  EXPECT_EQ(c.received().rfind("HTTP/1.1 413", 0), 0u) << c.received();
}

TEST_F(ProxyTest, WebSocketConnectionsAreTunnelledToTheWeightedColour) {
  WebSocketBackend blue("blue"), green("green");
  start(blue.address(), green.address());
  WebSocketClient a(port_);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.echo("hello"), "blue:hello");
  EXPECT_EQ(a.echo("again"), "blue:again") << "the tunnel stays open across messages";
  setWeights(0, 100);
  WebSocketClient b(port_);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.echo("new"), "green:new") << "a new connection follows the new weights";
}

TEST_F(ProxyTest, LongLivedConnectionsToADrainedColourCloseGraduallyAfterTheGrace) {
  WebSocketBackend blue("blue"), green("green");
  const auto grace = 300ms, spread = 1500ms;
  start(blue.address(), green.address(), "  long_lived: {grace: 300ms, spread: 1500ms}\n");
  std::vector<std::unique_ptr<WebSocketClient>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<WebSocketClient>(port_));
    ASSERT_TRUE(clients.back()->ok());
    ASSERT_EQ(clients.back()->echo("x"), "blue:x");
  }
  const auto switched = testing::steadyNow();
  setWeights(0, 100);
  for (auto& c : clients) EXPECT_EQ(c->echo("still"), "blue:still") << "not cut at the switch";
  for (auto& c : clients) c->watchForClose();
  ASSERT_TRUE(testing::waitUntil([&] {
    return std::all_of(clients.begin(), clients.end(), [](auto& c) { return c->closed(); });
  }, 10s)) << "every tunnel to blue closed";
  auto first = clients[0]->closedAt(), last = first;
  for (auto& c : clients) {
    first = std::min(first, c->closedAt());
    last = std::max(last, c->closedAt());
  }
  EXPECT_GE(first - switched, grace - 50ms) << "none closed before the grace period";
  EXPECT_LE(last - switched, grace + spread + 1s);
  EXPECT_GE(last - first, spread / 5) << "closed one by one over the spread, not all at once";
  WebSocketClient again(port_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.echo("back"), "green:back") << "the reconnect lands on green";
  const std::string metrics = testing::httpGet(svc_->adminPort(), "/metrics").body;
  EXPECT_NE(metrics.find("greenlight_proxy_long_lived_drained_total{service=\"vehicles\"} 8"), std::string::npos) << metrics;
}

}  // namespace
}  // namespace greenlight::proxy
