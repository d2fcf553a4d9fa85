#include "greenlight/common/admin_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include "greenlight/simulator/cert_gen.h"
#include "support/test_backend.h"
#include "support/test_support.h"

namespace greenlight {
namespace {

using testing::httpGet;
using testing::httpPost;

const std::string kViewerToken = "viewer-token-0123456789";
const std::string kOperatorToken = "operator-token-0123456789";

std::unique_ptr<AdminServer> startServer(AdminServerOptions o) {
  o.port = 0;
  auto s = AdminServer::create(std::move(o));
  EXPECT_TRUE(s.ok()) << s.status().message();
  auto server = std::move(s.value());
  server->handle("GET", "/api/v1/thing", Role::kViewer, [](const AdminRequest& r) {
    return jsonResponse(200, "{\"who\":\"" + r.principal + "\"}");
  });
  server->handle("POST", "/api/v1/change", Role::kOperator, [](const AdminRequest& r) {
    return jsonResponse(200, "{\"who\":\"" + r.principal + "\"}");
  });
  EXPECT_TRUE(server->start().ok());
  return server;
}

AdminServerOptions withTokens() {
  AdminServerOptions o;
  o.tokens.push_back({"grafana", Role::kViewer, "", sha256(kViewerToken)});  // unsalted (token_sha256)
  o.tokens.push_back({"alice", Role::kOperator, "pepper", saltedSha256("pepper", kOperatorToken)});
  return o;
}

TEST(AdminServer, HealthIsOpenEverythingElseNeedsAToken) {
  auto server = startServer(withTokens());
  EXPECT_EQ(httpGet(server->port(), "/healthz").status, 200);
  EXPECT_EQ(httpGet(server->port(), "/readyz").status, 503);  // not ready until told
  server->setReady(true);
  EXPECT_EQ(httpGet(server->port(), "/readyz").status, 200);
  EXPECT_EQ(httpGet(server->port(), "/api/v1/thing").status, 401);
  EXPECT_EQ(httpGet(server->port(), "/metrics").status, 401);
  EXPECT_EQ(httpGet(server->port(), "/api/v1/thing", "wrong-token-000000000").status, 401);
}

// cpp-httplib sends a response's head and body separately; without TCP_NODELAY each kept-alive
// request (a dashboard, a Prometheus scrape) waited 40 ms for the client's delayed ACK.
TEST(AdminServer, ASecondServerOnTheSamePortFailsInsteadOfSharingIt) {
  auto first = startServer(AdminServerOptions{});
  AdminServerOptions o;
  o.port = first->port();
  auto second = AdminServer::create(std::move(o));
  ASSERT_TRUE(second.ok());
  const Status st = second.value()->start();
  // With cpp-httplib's default SO_REUSEPORT both bound, and the kernel split the connections.
  ASSERT_FALSE(st.ok()) << "a second listener took a share of port " << first->port();
  EXPECT_NE(st.message().find("cannot listen on 127.0.0.1:" + std::to_string(first->port())), std::string::npos) << st.message();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(httpGet(first->port(), "/healthz").status, 200);
}

TEST(AdminServer, KeptAliveRequestsAreAnsweredWithoutWaitingForADelayedAck) {
  auto server = startServer({});
  EXPECT_LT(testing::keepAliveMedian(server->port(), "/healthz", 15), std::chrono::milliseconds(20));
}

// A client that keeps its connection open between requests (the status page polls every 2 s, a
// dashboard, Prometheus) holds a worker, and a stop waits for that worker. With a 5 s keep-alive
// the status page's connection never idled out, and every stop took 5 s more.
TEST(AdminServer, AStopDoesNotWaitOutAKeptAliveClient) {
  auto server = startServer({});
  testing::RawConnection kept(server->port());
  kept.send("GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n");
  ASSERT_EQ(kept.read().status, 200);
  EXPECT_TRUE(testing::returnsWithin([&] { server->stop(); }, std::chrono::milliseconds(3000)))
      << "the stop waited for the kept-alive connection";
  EXPECT_TRUE(kept.closedWithin(std::chrono::seconds(1)));
}

TEST(AdminServer, RolesAreEnforced) {
  auto server = startServer(withTokens());
  auto viewer_read = httpGet(server->port(), "/api/v1/thing", kViewerToken);
  EXPECT_EQ(viewer_read.status, 200);
  EXPECT_EQ(viewer_read.body, "{\"who\":\"grafana\"}");
  auto viewer_write = httpPost(server->port(), "/api/v1/change", "{}", kViewerToken);
  EXPECT_EQ(viewer_write.status, 403);
  EXPECT_NE(viewer_write.body.find("needs the operator role"), std::string::npos);
  auto operator_write = httpPost(server->port(), "/api/v1/change", "{}", kOperatorToken);
  EXPECT_EQ(operator_write.status, 200);
  EXPECT_EQ(operator_write.body, "{\"who\":\"alice\"}");
  EXPECT_EQ(httpGet(server->port(), "/metrics", kViewerToken).status, 200);
}

TEST(AdminServer, AuthFailuresAreCounted) {
  auto server = startServer(withTokens());
  (void)httpGet(server->port(), "/api/v1/thing", "nope-nope-nope-nope");
  (void)httpPost(server->port(), "/api/v1/change", "{}", kViewerToken);
  auto metrics = httpGet(server->port(), "/metrics", kViewerToken).body;
  EXPECT_NE(metrics.find("greenlight_admin_auth_failures_total 2"), std::string::npos) << metrics;
}

TEST(AdminServer, PublicMetricsNeedNoToken) {
  auto o = withTokens();
  o.public_metrics = true;
  auto server = startServer(o);
  EXPECT_EQ(httpGet(server->port(), "/metrics").status, 200);
  EXPECT_EQ(httpGet(server->port(), "/api/v1/thing").status, 401);
}

TEST(AdminServer, RefusesToExposeAnUnauthenticatedApiBeyondLoopback) {
  AdminServerOptions o;
  o.host = "0.0.0.0";
  auto s = AdminServer::create(o);
  EXPECT_FALSE(s.ok());
}

TEST(AdminServer, UnknownPathIsJson404AndServerStaysUp) {
  auto server = startServer(withTokens());
  auto r = httpGet(server->port(), "/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("error"), std::string::npos);
  EXPECT_EQ(httpGet(server->port(), "/healthz").status, 200);
}

TEST(AdminServer, ServesHttpsWithConfiguredCertificate) {
  testing::TempDir dir;
  auto ca = simulator::CertAuthority::create(dir.path(), "test CA");
  ASSERT_TRUE(ca.ok());
  auto files = ca->issue("admin", -std::chrono::hours(1), std::chrono::hours(24));
  ASSERT_TRUE(files.ok());
  auto o = withTokens();
  o.tls_cert_file = files->cert_file;
  o.tls_key_file = files->key_file;
  auto server = startServer(o);
  ASSERT_TRUE(server->tls());
  httplib::SSLClient verified("127.0.0.1", server->port());
  verified.set_ca_cert_path(ca->caFile().c_str());
  verified.enable_server_certificate_verification(true);
  auto res = verified.Get("/api/v1/thing", {{"Authorization", "Bearer " + kViewerToken}});
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  // A client that does not trust our CA refuses the connection.
  httplib::SSLClient untrusting("127.0.0.1", server->port());
  untrusting.enable_server_certificate_verification(true);
  EXPECT_FALSE(untrusting.Get("/healthz"));
}

TEST(AdminServer, BadCertificateFilesAreAClearError) {
  AdminServerOptions o = withTokens();
  o.tls_cert_file = "/nonexistent/cert.pem";
  o.tls_key_file = "/nonexistent/key.pem";
  auto s = AdminServer::create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("/nonexistent/cert.pem"), std::string::npos);
}

TEST(AdminOptions, ParsesTokensAndRejectsWeakOnes) {
  ConfigErrors errors;
  ConfigReader r("c.yaml", errors, [](const std::string& k) -> std::optional<std::string> {
    if (k == "OP") return "operator-token-0123456789";
    return std::nullopt;
  });
  auto root = r.loadString(R"(admin:
  listen: 127.0.0.1:9443
  tokens:
    - {name: alice, role: operator, token: "${OP}"}
    - {name: short, role: viewer, token: "abc"}
    - {name: hashed, role: viewer, token_sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}
    - {name: bad, role: root, token_sha256: "xyz"}
    - {name: salted, role: admin, token_hash: "sha256:00112233445566778899aabbccddeeff:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}
    - {name: badsalt, role: admin, token_hash: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}
)");
  auto o = parseAdminOptions(r, (*root)["admin"], "admin");
  EXPECT_EQ(o.port, 9443);
  EXPECT_EQ(o.host, "127.0.0.1");
  ASSERT_GE(o.tokens.size(), 3u);
  // A plain token (from the environment) is kept salted even in memory.
  EXPECT_EQ(o.tokens[0].salt.size(), 16u);
  EXPECT_TRUE(constantTimeEqual(o.tokens[0].digest, saltedSha256(o.tokens[0].salt, "operator-token-0123456789")));
  EXPECT_EQ(o.tokens[0].role, Role::kOperator);
  ASSERT_GE(o.tokens.size(), 5u);
  EXPECT_EQ(o.tokens[4].name, "salted");
  EXPECT_EQ(o.tokens[4].role, Role::kAdmin);
  EXPECT_EQ(o.tokens[4].salt, std::string("\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff", 16));
  const std::string all = errors.format();
  EXPECT_NE(all.find("admin.tokens[1].token: a token must be at least 16 characters"), std::string::npos) << all;
  EXPECT_NE(all.find("admin.tokens[3].role: expected viewer, operator or admin"), std::string::npos) << all;
  EXPECT_NE(all.find("admin.tokens[3].token_sha256: expected 64 hex digits"), std::string::npos) << all;
  EXPECT_NE(all.find("admin.tokens[5].token_hash: expected sha256:SALT:HASH"), std::string::npos) << all;
  EXPECT_EQ(all.find("operator-token-0123456789"), std::string::npos) << "a secret leaked into an error";
}

}  // namespace
}  // namespace greenlight

namespace greenlight {
namespace {

TEST(AdminServer, WrongTokensLockTheAddressOutButAMissingTokenDoesNot) {
  SimulatedTimeSource clock;
  auto o = withTokens();
  o.time = &clock;
  o.auth_throttle.limit = 5;
  auto server = startServer(o);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(testing::httpGet(server->port(), "/api/v1/thing").status, 401) << "no token: no lockout";
  EXPECT_EQ(testing::httpGet(server->port(), "/api/v1/thing", kViewerToken).status, 200);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(testing::httpGet(server->port(), "/api/v1/thing", "guess-" + std::to_string(i) + "-0000000000").status, 401);
  auto locked = testing::httpGet(server->port(), "/api/v1/thing", kViewerToken);
  EXPECT_EQ(locked.status, 429) << "even the right token waits out the lockout";
  EXPECT_EQ(testing::httpGet(server->port(), "/healthz").status, 200) << "open endpoints stay open";
  clock.advance(std::chrono::minutes(5) + std::chrono::seconds(1));
  EXPECT_EQ(testing::httpGet(server->port(), "/api/v1/thing", kViewerToken).status, 200);
}

TEST(AuthThrottle, CountsWithinTheWindowAndStaysBounded) {
  SimulatedTimeSource clock;
  AuthThrottle t(clock, AuthThrottlePolicy{3, std::chrono::seconds(60), std::chrono::seconds(300), 100});
  EXPECT_FALSE(t.recordFailure("a"));
  clock.advance(std::chrono::seconds(61));
  EXPECT_FALSE(t.recordFailure("a"));
  EXPECT_FALSE(t.recordFailure("a")) << "the first failure left the window";
  EXPECT_EQ(t.blockedFor("a"), Duration::zero());
  EXPECT_TRUE(t.recordFailure("a"));
  EXPECT_EQ(t.blockedFor("a"), std::chrono::seconds(300));
  EXPECT_EQ(t.blockedFor("b"), Duration::zero()) << "per address";
  for (int i = 0; i < 1000; ++i) t.recordFailure("10.0.0." + std::to_string(i));
  EXPECT_LE(t.tracked(), 100u) << "a flood from many addresses stays bounded";
}

}  // namespace
}  // namespace greenlight
