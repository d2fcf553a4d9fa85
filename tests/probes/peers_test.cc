// Probes against peers other than the simulator: a server that demands a client certificate
// (mTLS), a real nginx (Debian package) speaking HTTP/2, and a redirecting server.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <thread>

#include "greenlight/probes/curl_transport.h"
#include "greenlight/probes/probe_run.h"
#include "greenlight/simulator/cert_gen.h"
#include "support/test_support.h"

namespace greenlight::probes {
namespace {

using namespace std::chrono_literals;

ProbeResult runOnce(const ProbeSpec& spec) { return testing::runProbeOnce(spec); }

ProbeSpec probe(const std::string& url, const std::string& ca_file) {
  ProbeSpec p;
  p.name = "peer";
  p.timeout = 3s;
  p.tls.ca_file = ca_file;
  StepSpec s;
  s.name = "main";
  s.url = url;
  s.conditions.push_back(parseCondition("[STATUS] == 200").value());
  p.steps.push_back(s);
  return p;
}

TEST(TlsPeers, ClientCertificateIsPresentedWhenConfigured) {
  testing::TempDir dir;
  auto ca = simulator::CertAuthority::create(dir.path(), "mTLS test CA");
  ASSERT_TRUE(ca.ok());
  auto server_cert = ca->issue("server", -1h, 24h);
  auto client_cert = ca->issue("client", -1h, 24h);
  ASSERT_TRUE(server_cert.ok() && client_cert.ok());
  httplib::SSLServer server(server_cert->cert_file.c_str(), server_cert->key_file.c_str(),
                            ca->caFile().c_str());  // demands a client certificate from this CA
  ASSERT_TRUE(server.is_valid());
  server.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  ASSERT_TRUE(testing::waitUntil([&] { return server.is_running(); }));

  ProbeSpec p = probe("https://127.0.0.1:" + std::to_string(port) + "/health", ca->caFile());
  auto without = runOnce(p);
  EXPECT_FALSE(without.success);
  EXPECT_TRUE(without.reason == FailureReason::kTls || without.reason == FailureReason::kConnection)
      << reasonName(without.reason) << ": " << without.message;

  p.tls.cert_file = client_cert->cert_file;
  p.tls.key_file = client_cert->key_file;
  auto with = runOnce(p);
  EXPECT_TRUE(with.success) << with.message;

  server.stop();
  t.join();
}

TEST(TlsPeers, Http2IsUsedWhenTheServerSpeaksIt) {
  testing::TempDir dir;
  auto ca = simulator::CertAuthority::create(dir.path(), "h2 test CA");
  ASSERT_TRUE(ca.ok());
  auto cert = ca->issue("nginx", -1h, 24h);
  ASSERT_TRUE(cert.ok());
  const int port = testing::freePort();
  const std::string prefix = dir.path();
  std::ofstream(prefix + "/nginx.conf") << "daemon off; worker_processes 1; pid " << prefix << "/nginx.pid;\n"
      << "error_log " << prefix << "/error.log;\nevents {}\nhttp {\n  access_log off;\n"
      << "  client_body_temp_path " << prefix << "/b; proxy_temp_path " << prefix << "/p;\n"
      << "  fastcgi_temp_path " << prefix << "/f; uwsgi_temp_path " << prefix << "/u; scgi_temp_path " << prefix << "/s;\n"
      << "  server {\n    listen 127.0.0.1:" << port << " ssl http2;\n"
      << "    ssl_certificate " << cert->cert_file << ";\n    ssl_certificate_key " << cert->key_file << ";\n"
      << "    location / { return 200 'ok'; }\n  }\n}\n";
  testing::ChildProcess nginx({"nginx", "-c", prefix + "/nginx.conf", "-p", prefix}, prefix + "/nginx.out");
  ASSERT_TRUE(testing::waitUntil([&] { return runOnce(probe("https://127.0.0.1:" + std::to_string(port) + "/", ca->caFile())).success; }))
      << testing::readFile(prefix + "/error.log") << testing::readFile(prefix + "/nginx.out");

  ProbeSpec p = probe("https://127.0.0.1:" + std::to_string(port) + "/", ca->caFile());
  p.steps[0].http_version = HttpVersion::kHttp2;
  auto h2 = runOnce(p);
  ASSERT_TRUE(h2.success) << h2.message;
  EXPECT_EQ(h2.steps[0].http_version, 2);
  p.steps[0].http_version = HttpVersion::kHttp1_1;
  auto h1 = runOnce(p);
  EXPECT_EQ(h1.steps[0].http_version, 1.1);
  nginx.signal(SIGQUIT);
  EXPECT_EQ(nginx.wait(10s), 0);
}

TEST(HttpPeers, RedirectsAreFollowedOrNotAsConfigured) {
  httplib::Server server;
  server.Get("/old", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/new", 301); });
  server.Get("/new", [](const httplib::Request&, httplib::Response& res) { res.set_content("{}", "application/json"); });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  ASSERT_TRUE(testing::waitUntil([&] { return server.is_running(); }));

  ProbeSpec p = probe("http://127.0.0.1:" + std::to_string(port) + "/old", "");
  auto followed = runOnce(p);
  EXPECT_TRUE(followed.success) << followed.message;
  EXPECT_EQ(followed.steps[0].redirects, 1);
  EXPECT_FALSE(followed.steps[0].ssl);

  p.steps[0].follow_redirects = false;
  auto stopped = runOnce(p);
  EXPECT_FALSE(stopped.success);
  EXPECT_EQ(stopped.message, "step main: [STATUS] == 200 (got 301)");

  p.steps[0].follow_redirects = true;
  p.steps[0].max_redirects = 0;
  auto limited = runOnce(p);
  EXPECT_EQ(limited.reason, FailureReason::kHttp) << limited.message;

  server.stop();
  t.join();
}

}  // namespace
}  // namespace greenlight::probes
