// Server TLS shared by the admin API and the proxy: certificates replaced while running,
// client certificates required (mTLS), bad files refused with the field and file named — and a
// refused reload changes nothing. Real handshakes on 127.0.0.1.
#include "greenlight/common/tls.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/ssl.h>

#include <filesystem>

#include "greenlight/common/admin_server.h"
#include "greenlight/simulator/cert_gen.h"
#include "support/test_support.h"

namespace greenlight {
namespace {

using namespace std::chrono_literals;

const std::string kToken = "operator-token-0123456789";

// Two unrelated CAs, each with a server and a client certificate.
class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const std::string name : {"one", "two"}) {
      std::filesystem::create_directories(dir_.path() + "/" + name);
      auto ca = simulator::CertAuthority::create(dir_.path() + "/" + name, "CA " + name);
      ASSERT_TRUE(ca.ok()) << ca.status().message();
      auto server = ca->issue("server", -1h, 24h);
      auto client = ca->issue("release-bot", -1h, 24h);
      ASSERT_TRUE(server.ok() && client.ok());
      cas_.push_back(ca->caFile());
      servers_.push_back(*server);
      clients_.push_back(*client);
    }
  }

  AdminServerOptions options(int ca, bool mtls) const {
    AdminServerOptions o;
    o.port = 0;
    o.tokens.push_back({"alice", Role::kOperator, "salt", saltedSha256("salt", kToken)});
    o.tls_cert_file = servers_[ca].cert_file;
    o.tls_key_file = servers_[ca].key_file;
    if (mtls) o.tls_client_ca_file = cas_[ca];
    return o;
  }

  std::unique_ptr<AdminServer> start(const AdminServerOptions& o) {
    auto s = AdminServer::create(o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    if (!s.ok()) return nullptr;
    auto server = std::move(s.value());
    server->handle("GET", "/api/v1/who", Role::kViewer, [](const AdminRequest& r) {
      return jsonResponse(200, "{\"token\":\"" + r.principal + "\",\"cert\":\"" + r.client_certificate + "\"}");
    });
    EXPECT_TRUE(server->start().ok());
    return server;
  }

  // GET /api/v1/who over TLS trusting `trust_ca`, with the client certificate of `client_ca`
  // (-1: none). Returns the status, or -1 if the connection or handshake failed.
  int get(int port, int trust_ca, int client_ca, std::string* body = nullptr) const {
    std::unique_ptr<httplib::SSLClient> c =
        client_ca < 0 ? std::make_unique<httplib::SSLClient>("127.0.0.1", port)
                      : std::make_unique<httplib::SSLClient>("127.0.0.1", port, clients_[client_ca].cert_file,
                                                             clients_[client_ca].key_file);
    c->set_ca_cert_path(cas_[trust_ca].c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(5, 0);
    auto res = c->Get("/api/v1/who", {{"Authorization", "Bearer " + kToken}});
    if (!res) return -1;
    if (body) *body = res->body;
    return res->status;
  }

  testing::TempDir dir_;
  std::vector<std::string> cas_;
  std::vector<simulator::CertFiles> servers_, clients_;
};

TEST_F(TlsTest, BadFilesNameTheFieldAndTheFile) {
  struct Case {
    TlsFiles files;
    std::string expected;
  };
  const std::string missing = dir_.path() + "/missing.pem";
  const std::vector<Case> cases = {
      {{missing, servers_[0].key_file, "", "admin.tls"}, "admin.tls.cert_file: cannot read " + missing},
      {{servers_[0].cert_file, missing, "", "admin.tls"}, "admin.tls.key_file: cannot read " + missing},
      {{servers_[0].key_file, servers_[0].key_file, "", "admin.tls"}, "admin.tls.cert_file: " + servers_[0].key_file + " holds no PEM certificate"},
      {{servers_[0].cert_file, servers_[1].key_file, "", "x.tls"}, "x.tls.key_file: " + servers_[1].key_file + " is not the key of " + servers_[0].cert_file},
      {{servers_[0].cert_file, servers_[0].key_file, missing, "admin.tls"}, "admin.tls.client_ca_file: cannot read CA certificates from " + missing},
      {{"", servers_[0].key_file, "", "admin.tls"}, "admin.tls: cert_file and key_file are both required"},
  };
  for (const auto& c : cases) {
    auto tls = ServerTls::load(c.files);
    ASSERT_FALSE(tls.ok()) << c.expected;
    EXPECT_NE(tls.status().message().find(c.expected), std::string::npos) << tls.status().message();
  }
  auto good = ServerTls::load({servers_[0].cert_file, servers_[0].key_file, cas_[0], "admin.tls"});
  ASSERT_TRUE(good.ok()) << good.status().message();
  EXPECT_TRUE((*good)->requiresClientCertificate());
  EXPECT_NE((*good)->describe().find("CN=server"), std::string::npos) << (*good)->describe();
}

TEST_F(TlsTest, AdminRefusesProtocolsOlderThanTls12) {
  auto server = start(options(0, false));
  ASSERT_TRUE(server);
  EXPECT_FALSE(testing::tlsHandshakes(server->port(), TLS1_1_VERSION));
  EXPECT_TRUE(testing::tlsHandshakes(server->port(), TLS1_2_VERSION));
  EXPECT_TRUE(testing::tlsHandshakes(server->port(), TLS1_3_VERSION));
}

TEST_F(TlsTest, AdminCertificateIsReplacedWithoutARestart) {
  auto server = start(options(0, false));
  ASSERT_TRUE(server);
  EXPECT_EQ(get(server->port(), 0, -1), 200);
  EXPECT_EQ(get(server->port(), 1, -1), -1);  // CA two does not vouch for the first certificate

  ASSERT_TRUE(server->reload(options(1, false)).ok());
  EXPECT_EQ(get(server->port(), 1, -1), 200);  // same server, same port: the new certificate
  EXPECT_EQ(get(server->port(), 0, -1), -1);

  // A reload with a broken file is refused and the running certificate stays.
  AdminServerOptions broken = options(0, false);
  broken.tls_key_file = servers_[1].key_file;
  Status s = server->reload(broken);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("is not the key of"), std::string::npos) << s.message();
  EXPECT_EQ(get(server->port(), 1, -1), 200);

  // Turning TLS off is a restart, not a reload.
  AdminServerOptions plain = options(1, false);
  plain.tls_cert_file.clear();
  plain.tls_key_file.clear();
  EXPECT_FALSE(server->checkReload(plain).ok());
}

TEST_F(TlsTest, AdminWithClientCaRequiresACertificateFromIt) {
  auto server = start(options(0, true));
  ASSERT_TRUE(server);
  std::string body;
  EXPECT_EQ(get(server->port(), 0, 0, &body), 200);
  EXPECT_EQ(body, R"({"token":"alice","cert":"CN=release-bot"})");
  EXPECT_EQ(get(server->port(), 0, -1), -1);  // no client certificate: no handshake
  EXPECT_EQ(get(server->port(), 0, 1), -1);   // a certificate from another CA: no handshake

  // The client CA changes with a reload, like the server certificate.
  AdminServerOptions other = options(0, true);
  other.tls_client_ca_file = cas_[1];
  ASSERT_TRUE(server->reload(other).ok());
  EXPECT_EQ(get(server->port(), 0, 1), 200);
  EXPECT_EQ(get(server->port(), 0, 0), -1);
  // And mTLS can be switched off (the token still decides the role).
  ASSERT_TRUE(server->reload(options(0, false)).ok());
  EXPECT_EQ(get(server->port(), 0, -1, &body), 200);
  EXPECT_EQ(body, R"({"token":"alice","cert":""})");
}

TEST_F(TlsTest, TokensChangeWithAReload) {
  auto server = start(options(0, false));
  ASSERT_TRUE(server);
  EXPECT_EQ(get(server->port(), 0, -1), 200);
  AdminServerOptions rotated = options(0, false);
  const std::string next = "next-operator-token-987654321";
  rotated.tokens = {{"alice", Role::kOperator, "s2", saltedSha256("s2", next)}};
  ASSERT_TRUE(server->reload(rotated).ok());
  EXPECT_EQ(get(server->port(), 0, -1), 401);  // the old token no longer works
  httplib::SSLClient c("127.0.0.1", server->port());
  c.set_ca_cert_path(cas_[0].c_str());
  c.enable_server_certificate_verification(true);
  auto res = c.Get("/api/v1/who", {{"Authorization", "Bearer " + next}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

}  // namespace
}  // namespace greenlight
