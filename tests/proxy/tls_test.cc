// TLS termination on a proxy listener: a verified HTTPS request reaches the backend marked
// X-Forwarded-Proto: https; TLS 1.1 and plain HTTP on the TLS port are refused, and the proxy
// keeps serving.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>
#include <vector>

#include "greenlight/simulator/cert_gen.h"
#include "proxy/proxy_fixture.h"
#include "support/test_websocket.h"

namespace greenlight::proxy {
namespace {

class TlsProxyTest : public ProxyTest {
 protected:
  void SetUp() override {
    auto ca = simulator::CertAuthority::create(dir_.path(), "proxy test CA");
    ASSERT_TRUE(ca.ok()) << ca.status().message();
    auto files = ca->issue("proxy", -std::chrono::hours(1), std::chrono::hours(24));
    ASSERT_TRUE(files.ok());
    ca_file_ = ca->caFile();
    tls_line_ = "      tls: {cert_file: " + files->cert_file + ", key_file: " + files->key_file + "}\n";
    start(blue_.address(), green_.address(), "  threads: 2\n", "{blue: 100, green: 0}", tls_line_);
  }
  // Rewrites the config file with another `tls:` line for the service.
  void rewriteTls(const std::string& line) {
    std::string text = testing::readFile(config_);
    text.replace(text.find(tls_line_), tls_line_.size(), line);
    tls_line_ = line;
    dir_.write("proxy.yaml", text);
  }
  std::string ca_file_;
  std::string tls_line_;
};

TEST_F(TlsProxyTest, AVerifiedHttpsRequestReachesTheBackendMarkedHttps) {
  httplib::SSLClient cli("127.0.0.1", port_);
  cli.set_ca_cert_path(ca_file_.c_str());
  cli.enable_server_certificate_verification(true);
  auto res = cli.Get("/");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "blue");
  EXPECT_EQ(res->get_header_value("X-Seen-Forwarded-Proto"), "https");
  setWeights(0, 100);
  auto again = cli.Get("/");  // same TLS connection, kept alive
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, "green");
}

TEST_F(TlsProxyTest, OldProtocolsAndPlainHttpAreRefusedAndTheProxyKeepsServing) {
  EXPECT_FALSE(testing::tlsHandshakes(port_, TLS1_1_VERSION)) << "TLS 1.1 must be refused";
  EXPECT_TRUE(testing::tlsHandshakes(port_, TLS1_2_VERSION));
  EXPECT_TRUE(testing::tlsHandshakes(port_, TLS1_3_VERSION));
  const int fd = testing::connectLoopback(port_);
  ASSERT_GE(fd, 0);
  const std::string plain = "GET / HTTP/1.1\r\nHost: v\r\n\r\n";
  ASSERT_EQ(::send(fd, plain.data(), plain.size(), MSG_NOSIGNAL), ssize_t(plain.size()));
  char buf[256];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  EXPECT_FALSE(n > 0 && std::string(buf, size_t(n)).find("200 OK") != std::string::npos) << "plain HTTP got an answer";
  EXPECT_EQ(blue_.requests(), 0) << "nothing reached the backend";
  httplib::SSLClient cli("127.0.0.1", port_);
  cli.set_ca_cert_path(ca_file_.c_str());
  cli.enable_server_certificate_verification(true);
  auto res = cli.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const std::string metrics = testing::httpGet(svc_->adminPort(), "/metrics").body;
  EXPECT_NE(metrics.find("greenlight_proxy_tls_handshake_failures_total{service=\"vehicles\"} 2"), std::string::npos) << metrics;
}

TEST_F(TlsProxyTest, CertificateAndClientCaChangeOnReloadAndOpenConnectionsKeepServing) {
  httplib::SSLClient before("127.0.0.1", port_);
  before.set_ca_cert_path(ca_file_.c_str());
  before.enable_server_certificate_verification(true);
  before.set_keep_alive(true);
  ASSERT_TRUE(before.Get("/"));

  const std::string next_dir = dir_.path() + "/next";
  std::filesystem::create_directories(next_dir);
  auto next_ca = simulator::CertAuthority::create(next_dir, "next CA");
  ASSERT_TRUE(next_ca.ok());
  auto server = next_ca->issue("proxy-next", -1h, 24h);
  auto client = next_ca->issue("tester", -1h, 24h);
  ASSERT_TRUE(server.ok() && client.ok());
  rewriteTls("      tls: {cert_file: " + server->cert_file + ", key_file: " + server->key_file +
             ", client_ca_file: " + next_ca->caFile() + "}\n");
  auto reloaded = testing::httpPost(svc_->adminPort(), "/-/reload", "");
  ASSERT_EQ(reloaded.status, 200) << reloaded.body;

  auto kept = before.Get("/");  // the connection opened before the reload goes on
  ASSERT_TRUE(kept) << httplib::to_string(kept.error());
  EXPECT_EQ(kept->status, 200);
  httplib::SSLClient old_trust("127.0.0.1", port_, client->cert_file, client->key_file);
  old_trust.set_ca_cert_path(ca_file_.c_str());
  old_trust.enable_server_certificate_verification(true);
  EXPECT_FALSE(old_trust.Get("/")) << "new connections must get the new certificate";
  httplib::SSLClient no_cert("127.0.0.1", port_);
  no_cert.set_ca_cert_path(next_ca->caFile().c_str());
  no_cert.enable_server_certificate_verification(true);
  EXPECT_FALSE(no_cert.Get("/")) << "the listener now requires a client certificate";
  httplib::SSLClient with_cert("127.0.0.1", port_, client->cert_file, client->key_file);
  with_cert.set_ca_cert_path(next_ca->caFile().c_str());
  with_cert.enable_server_certificate_verification(true);
  auto res = with_cert.Get("/");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->body, "blue");

  // A reload naming a missing key is refused (400, the file named) and nothing changes.
  rewriteTls("      tls: {cert_file: " + server->cert_file + ", key_file: /nonexistent/key.pem, client_ca_file: " +
             next_ca->caFile() + "}\n");
  auto refused = testing::httpPost(svc_->adminPort(), "/-/reload", "");
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("proxy.services[0].tls.key_file: cannot read /nonexistent/key.pem"), std::string::npos)
      << refused.body;
  httplib::SSLClient after("127.0.0.1", port_, client->cert_file, client->key_file);
  after.set_ca_cert_path(next_ca->caFile().c_str());
  after.enable_server_certificate_verification(true);
  auto still = after.Get("/");
  ASSERT_TRUE(still);
  EXPECT_EQ(still->status, 200);
}

// Between requests a TLS keep-alive connection holds neither the proxy's scratch buffer nor
// OpenSSL's record buffers; each is served again after its wait, including two requests that
// arrive as two TLS records in one segment (the second is already in OpenSSL's hands, not the
// socket's, when the first has been answered: the wait must not sit on an empty socket).
TEST_F(TlsProxyTest, AnIdleTlsConnectionHoldsNoBufferAndIsServedAgain) {
  const int admin = svc_->adminPort();
  std::vector<std::unique_ptr<RawConnection>> clients;
  for (int k = 0; k < 40; ++k) {
    clients.push_back(std::make_unique<RawConnection>(port_, ca_file_));
    ASSERT_TRUE(clients.back()->ok()) << k;
    ASSERT_TRUE(clients.back()->send(get()));
    ASSERT_EQ(clients.back()->read().body, "blue") << k;
  }
  ASSERT_EQ(activeConnections(admin), 40);
  // One request at a time: a buffer per event loop (two) at most.
  EXPECT_TRUE(testing::waitUntil([&] { return connectionBuffers(admin) <= 2; }, 5s))
      << connectionBuffers(admin);
  for (auto& c : clients) {
    ASSERT_TRUE(c->sendRecords({get("/first"), get("/second")}));
    const testing::RawResponse first = c->read();
    const testing::RawResponse second = c->read();
    EXPECT_EQ(first.body, "blue");
    EXPECT_EQ(second.body, "blue") << "the second record's request was not served";
  }
  EXPECT_EQ(activeConnections(admin), 40);
}

// A body larger than many TLS records, both ways, on one connection that stays usable.
TEST_F(TlsProxyTest, LargeBodiesStreamThroughTlsBothWays) {
  RawConnection c(port_, ca_file_);
  ASSERT_TRUE(c.ok());
  std::string payload(1 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: v\r\nContent-Length: " + std::to_string(payload.size()) + "\r\n\r\n" + payload));
  const testing::RawResponse r = c.read(10s);
  ASSERT_EQ(r.status, 200) << r.headers;
  EXPECT_TRUE(r.body == "blue:" + payload) << "echoed " << r.body.size() << " bytes of " << payload.size() + 5;
  ASSERT_TRUE(c.send(get()));
  EXPECT_EQ(c.read().body, "blue");
}

// An Upgrade over TLS: the tunnel carries WebSocket frames both ways between the TLS client and
// the plain backend.
TEST_F(TlsProxyTest, AWebSocketUpgradeIsTunnelledOverTls) {
  testing::WebSocketBackend ws("ws");
  svc_.reset();
  start(ws.address(), green_.address(), "", "{blue: 100, green: 0}", tls_line_);
  RawConnection c(port_, ca_file_);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.send("GET /live HTTP/1.1\r\nHost: v\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
  ASSERT_EQ(c.read().status, 101);
  for (const std::string message : {"hello", "again"}) {
    // A masked text frame (clients must mask), answered unmasked.
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    std::string frame = {'\x81', static_cast<char>(0x80 | message.size())};
    frame.append(reinterpret_cast<const char*>(mask), 4);
    for (size_t i = 0; i < message.size(); ++i) frame += static_cast<char>(message[i] ^ mask[i % 4]);
    ASSERT_TRUE(c.send(frame));
    const std::string head = c.readBytes(2);
    ASSERT_EQ(head.size(), 2u) << message;
    EXPECT_EQ(static_cast<unsigned char>(head[0]), 0x81);
    EXPECT_EQ(c.readBytes(static_cast<unsigned char>(head[1]) & 0x7f), "ws:" + message);
  }
}

// A stop over TLS as over plain HTTP: the idle connection (waiting without a buffer) is closed
// at once, the one with a request in flight gets its answer first.
TEST_F(TlsProxyTest, StopClosesAnIdleTlsConnectionAndLetsTheRequestInFlightFinish) {
  RawConnection idle(port_, ca_file_);
  ASSERT_TRUE(idle.ok());
  ASSERT_TRUE(idle.send(get()));
  EXPECT_EQ(idle.read().body, "blue");
  RawConnection busy(port_, ca_file_);
  ASSERT_TRUE(busy.ok());
  ASSERT_TRUE(busy.send(get("/hold")));
  ASSERT_TRUE(testing::waitUntil([&] { return blue_.holding(); }));
  std::thread stopper([&] { svc_->stop(10s); });
  EXPECT_TRUE(idle.closedWithin(5s)) << "an idle TLS connection is closed at once";
  blue_.release();
  const testing::RawResponse r = busy.read();
  EXPECT_EQ(r.status, 200) << "the request in flight completes";
  EXPECT_EQ(r.body, "blue-held");
  stopper.join();
}

TEST(ProxyTlsConfig, AMissingCertificateFileIsAClearStartError) {
  testing::TempDir dir;
  TestBackend b("blue");
  const std::string config = dir.write("proxy.yaml", "log: {level: warn}\nadmin: {listen: 127.0.0.1:0}\nproxy:\n"
      "  services:\n    - name: vehicles\n      listen: 127.0.0.1:0\n      blue: [" + b.address() + "]\n      green: []\n"
      "      weights: {blue: 100, green: 0}\n      tls: {cert_file: /nonexistent/cert.pem, key_file: /nonexistent/key.pem}\n");
  auto svc = app::ProxyService::start(config, 0);
  ASSERT_FALSE(svc.ok());
  EXPECT_NE(svc.status().message().find("/nonexistent/cert.pem"), std::string::npos) << svc.status().message();
}

}  // namespace
}  // namespace greenlight::proxy
