// The greenlight binary as a user runs it: check-config output and exit codes, SIGHUP reload,
// SIGTERM stop.
#include <gtest/gtest.h>
#include <signal.h>

#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "greenlight/common/crypto.h"
#include "greenlight/simulator/cert_gen.h"
#include "support/test_backend.h"
#include "support/test_support.h"

namespace greenlight {
namespace {

using testing::ChildProcess;
using testing::TempDir;
using testing::TestBackend;

TEST(Cli, CheckConfigPrintsEveryErrorWithItsPlaceAndFails) {
  TempDir dir;
  const std::string path = dir.write("bad.yaml", R"(probes:
  - name: a
    url: https://x/
    interval: 30
  - name: b
    url: https://x/
    conditions: ["[STAUTS] == 200"]
    colour: blue
)");
  ChildProcess p({GREENLIGHT_BINARY, "check-config", path}, dir.path() + "/out.txt");
  EXPECT_EQ(p.wait(std::chrono::seconds(10)), 1);
  const std::string out = testing::readFile(dir.path() + "/out.txt");
  EXPECT_NE(out.find(path + ":4:15: probes[0].interval: expected a duration like \"30s\""), std::string::npos) << out;
  EXPECT_NE(out.find(path + ":7:18: probes[1].conditions[0]: condition \"[STAUTS] == 200\": unknown placeholder"), std::string::npos) << out;
  EXPECT_NE(out.find(path + ":8:5: probes[1].colour: unknown key"), std::string::npos) << out;
  EXPECT_NE(out.find("3 errors in " + path), std::string::npos) << out;
}

TEST(Cli, CheckConfigAcceptsAGoodFile) {
  TempDir dir;
  const std::string path = dir.write("ok.yaml", "probes:\n  - {name: a, url: 'https://x/'}\n");
  ChildProcess p({GREENLIGHT_BINARY, "check-config", path}, dir.path() + "/out.txt");
  EXPECT_EQ(p.wait(std::chrono::seconds(10)), 0);
  EXPECT_NE(testing::readFile(dir.path() + "/out.txt").find("ok (1 probes, 1 steps, 0 alert rules, 0 receivers, 0 rollout services)"), std::string::npos);
}

TEST(Cli, RunReloadsOnSighupAndStopsCleanlyOnSigterm) {
  TempDir dir;
  const int admin = testing::freePort();
  auto cfg = [&](const std::string& probes) {
    return "admin: {listen: 127.0.0.1:" + std::to_string(admin) + "}\nprobes:\n" + probes;
  };
  const std::string path = dir.write("g.yaml", cfg("  - {name: first, url: 'tcp://127.0.0.1:1', interval: 1s, timeout: 1s}\n"));
  ChildProcess p({GREENLIGHT_BINARY, "run", "--config", path}, dir.path() + "/log.txt");
  ASSERT_TRUE(testing::waitUntil([&] { return testing::httpGet(admin, "/readyz").status == 200; }))
      << testing::readFile(dir.path() + "/log.txt");
  EXPECT_NE(testing::httpGet(admin, "/api/v1/probes").body.find("\"first\""), std::string::npos);

  std::ofstream(path) << cfg("  - {name: second, url: 'tcp://127.0.0.1:1', interval: 1s, timeout: 1s}\n");
  p.signal(SIGHUP);
  EXPECT_TRUE(testing::waitUntil([&] {
    return testing::httpGet(admin, "/api/v1/probes").body.find("\"second\"") != std::string::npos;
  }));

  std::ofstream(path) << "probes: [ {name: broken\n";  // a bad reload: the old config stays
  p.signal(SIGHUP);
  EXPECT_TRUE(testing::waitUntil([&] {
    return testing::readFile(dir.path() + "/log.txt").find("reload rejected") != std::string::npos;
  }));
  EXPECT_NE(testing::httpGet(admin, "/api/v1/probes").body.find("\"second\""), std::string::npos);
  EXPECT_TRUE(p.running());

  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(std::chrono::seconds(10)), 0);
}

}  // namespace
}  // namespace greenlight

namespace greenlight {
namespace {

// Certificate rotation as certbot or cert-manager does it: new files at the same paths, then
// SIGHUP. New handshakes get the new certificate; the process and its port stay.
TEST(Cli, ProxyTakesARenewedCertificateOnSighup) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/old");
  std::filesystem::create_directories(dir.path() + "/new");
  std::filesystem::create_directories(dir.path() + "/live");
  auto old_ca = simulator::CertAuthority::create(dir.path() + "/old", "old CA");
  auto new_ca = simulator::CertAuthority::create(dir.path() + "/new", "new CA");
  ASSERT_TRUE(old_ca.ok() && new_ca.ok());
  auto old_cert = old_ca->issue("proxy", -std::chrono::hours(1), std::chrono::hours(24));
  auto new_cert = new_ca->issue("proxy", -std::chrono::hours(1), std::chrono::hours(24));
  ASSERT_TRUE(old_cert.ok() && new_cert.ok());
  const std::string cert = dir.write("live/cert.pem", testing::readFile(old_cert->cert_file));
  const std::string key = dir.write("live/key.pem", testing::readFile(old_cert->key_file));
  TestBackend backend("blue");
  const int listen = testing::freePort();
  const std::string path = dir.write("proxy.yaml", "admin: {listen: '127.0.0.1:0'}\nproxy:\n  services:\n"
      "    - name: vehicles\n      listen: 127.0.0.1:" + std::to_string(listen) + "\n      blue: [" + backend.address() +
      "]\n      green: []\n      weights: {blue: 100, green: 0}\n      tls: {cert_file: " + cert + ", key_file: " + key + "}\n");
  ChildProcess p({GREENLIGHT_BINARY, "proxy", "--config", path}, dir.path() + "/log.txt");
  auto answersTrusting = [&](const std::string& ca) {
    httplib::SSLClient c("127.0.0.1", listen);
    c.set_ca_cert_path(ca.c_str());
    c.enable_server_certificate_verification(true);
    auto res = c.Get("/");
    return res && res->status == 200 && res->body == "blue";
  };
  ASSERT_TRUE(testing::waitUntil([&] { return answersTrusting(old_ca->caFile()); })) << testing::readFile(dir.path() + "/log.txt");

  dir.write("live/cert.pem", testing::readFile(new_cert->cert_file));
  dir.write("live/key.pem", testing::readFile(new_cert->key_file));
  p.signal(SIGHUP);
  EXPECT_TRUE(testing::waitUntil([&] { return answersTrusting(new_ca->caFile()); })) << testing::readFile(dir.path() + "/log.txt");
  EXPECT_FALSE(answersTrusting(old_ca->caFile()));

  dir.write("live/key.pem", "not a key\n");  // a half-written renewal: refused, the new pair stays
  p.signal(SIGHUP);
  EXPECT_TRUE(testing::waitUntil([&] {
    return testing::readFile(dir.path() + "/log.txt").find("reload rejected") != std::string::npos;
  }));
  EXPECT_TRUE(answersTrusting(new_ca->caFile()));
  EXPECT_TRUE(p.running());
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(std::chrono::seconds(15)), 0);
}

TEST(Cli, DemoProbesTheSimulatorAndStopsEverythingOnSigterm) {
  TempDir dir;
  const int admin = testing::freePort();
  ChildProcess p({GREENLIGHT_BINARY, "demo", "--config", std::string(GREENLIGHT_SOURCE_DIR) + "/examples/demo.yaml",
                  "--admin-port", std::to_string(admin), "--proxy-port", "0"},
                 dir.path() + "/demo.txt", {{"GREENLIGHT_DEMO_STATE_DIR", dir.path() + "/state"}});
  // Every flow of the demo passes once it has run (intervals are 10 s, spread).
  ASSERT_TRUE(testing::waitUntil([&] {
    const std::string body = testing::httpGet(admin, "/api/v1/probes").body;
    size_t passed = 0;
    for (size_t at = 0; (at = body.find("\"health\":\"healthy\"", at)) != std::string::npos; ++at) ++passed;
    return passed >= 6;
  }, std::chrono::seconds(30))) << testing::readFile(dir.path() + "/demo.txt");
  const std::string out = testing::readFile(dir.path() + "/demo.txt");
  EXPECT_NE(out.find("Greenlight demo is running"), std::string::npos) << out;
  EXPECT_NE(out.find("/faults/bmw"), std::string::npos) << out;
  // A fresh state: it suggests the first rollout, to green, and breaking green to see a rollback.
  EXPECT_NE(out.find("(greenlight proxy: blue runs v1, green is idle)"), std::string::npos) << out;
  EXPECT_NE(out.find("rollout start vehicles --release v2 --url"), std::string::npos) << out;
  EXPECT_NE(out.find("/faults/release-green)"), std::string::npos) << out;
  // Alerting runs with the demo's rules and keeps its state where it was told to.
  const auto alerts = testing::httpGet(admin, "/api/v1/alerts");
  EXPECT_EQ(alerts.status, 200) << alerts.body;
  // The sample service's rollout is ready to start: v1 stable on blue behind the demo's proxy.
  const auto rollouts = testing::httpGet(admin, "/api/v1/rollouts/vehicles");
  EXPECT_EQ(rollouts.status, 200) << rollouts.body;
  EXPECT_NE(rollouts.body.find("\"stable_release\":\"v1\""), std::string::npos) << rollouts.body;
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(std::chrono::seconds(15)), 0);
  EXPECT_NE(testing::httpGet(admin, "/healthz").status, 200) << "the admin API stopped with it";
  EXPECT_NE(testing::readFile(dir.path() + "/state/alerts.json").find("\"version\":1"), std::string::npos);
}

}  // namespace
}  // namespace greenlight

namespace greenlight {
namespace {

TEST(Cli, CheckConfigKnowsProxyConfigs) {
  TempDir dir;
  ChildProcess good({GREENLIGHT_BINARY, "check-config", std::string(GREENLIGHT_SOURCE_DIR) + "/examples/proxy.yaml"},
                    dir.path() + "/good.txt");
  EXPECT_EQ(good.wait(std::chrono::seconds(10)), 0) << testing::readFile(dir.path() + "/good.txt");
  EXPECT_NE(testing::readFile(dir.path() + "/good.txt").find("ok (proxy: 1 services, 2 endpoints)"), std::string::npos);
  const std::string bad = dir.write("bad.yaml", "proxy:\n  services:\n    - {name: v, listen: '127.0.0.1:1', blue: ['x'], weight: {}}\n");
  ChildProcess p({GREENLIGHT_BINARY, "check-config", bad}, dir.path() + "/bad.txt");
  EXPECT_EQ(p.wait(std::chrono::seconds(10)), 1);
  const std::string out = testing::readFile(dir.path() + "/bad.txt");
  EXPECT_NE(out.find(bad + ":3:"), std::string::npos) << out;
  EXPECT_NE(out.find("proxy.services[0].weight: unknown key"), std::string::npos) << out;
}

}  // namespace
}  // namespace greenlight

namespace greenlight {
namespace {

TEST(Cli, SilenceAddListExpireAndAlertsTalkToARunningGreenlight) {
  TempDir dir;
  const int admin = testing::freePort();
  const std::string token = "operator-token-abcdefghij";
  const std::string path = dir.write("g.yaml",
      "admin:\n  listen: 127.0.0.1:" + std::to_string(admin) + "\n  tokens: [{name: alice, role: operator, token: " + token + "}]\n"
      "probes:\n  - {name: down, labels: {oem: bmw}, url: 'tcp://127.0.0.1:1', interval: 200ms, timeout: 200ms, health: {failure_threshold: 1}}\n"
      "alerting:\n  rules: [{alert: ProbeFailing, kind: probe_health}]\n"
      "  route: {receiver: r, group_wait: 1h}\n  receivers: [{name: r, webhook: {url: 'http://127.0.0.1:1/'}}]\n");
  ChildProcess server({GREENLIGHT_BINARY, "run", "--config", path}, dir.path() + "/log.txt");
  ASSERT_TRUE(testing::waitUntil([&] { return testing::httpGet(admin, "/readyz").status == 200; }))
      << testing::readFile(dir.path() + "/log.txt");
  const std::map<std::string, std::string> env = {{"GREENLIGHT_URL", "http://127.0.0.1:" + std::to_string(admin)},
                                                  {"GREENLIGHT_TOKEN", token}};
  auto cli = [&](std::vector<std::string> args, const std::string& out) {
    args.insert(args.begin(), GREENLIGHT_BINARY);
    ChildProcess p(args, dir.path() + "/" + out, env);
    const int rc = p.wait(std::chrono::seconds(15));
    return std::make_pair(rc, testing::readFile(dir.path() + "/" + out));
  };
  auto [add_rc, id] = cli({"silence", "add", "oem=bmw", "--duration", "2h", "--comment", "BMW maintenance"}, "add.txt");
  ASSERT_EQ(add_rc, 0) << id;
  id = id.substr(0, id.find('\n'));
  EXPECT_EQ(id.size(), 32u) << id;

  auto [list_rc, list] = cli({"silence", "list"}, "list.txt");
  EXPECT_EQ(list_rc, 0);
  EXPECT_NE(list.find(id), std::string::npos) << list;
  EXPECT_NE(list.find("active"), std::string::npos) << list;
  EXPECT_NE(list.find("alice"), std::string::npos) << list;
  EXPECT_NE(list.find("oem=\"bmw\""), std::string::npos) << list;

  ASSERT_TRUE(testing::waitUntil([&] { return cli({"alerts"}, "alerts.txt").second.find("ProbeFailing") != std::string::npos; }));
  const std::string alerts = cli({"alerts"}, "alerts.txt").second;
  EXPECT_NE(alerts.find("ProbeFailing"), std::string::npos) << alerts;
  EXPECT_NE(alerts.find("silenced"), std::string::npos) << alerts;

  auto [exp_rc, exp] = cli({"silence", "expire", id}, "expire.txt");
  EXPECT_EQ(exp_rc, 0) << exp;
  EXPECT_NE(cli({"silence", "list"}, "list2.txt").second.find("expired"), std::string::npos);
  EXPECT_NE(cli({"silence", "expire", id}, "again.txt").first, 0);  // already over: a clear error

  auto [bad_rc, bad] = cli({"silence", "add", "oem~bmw", "--comment", "x"}, "bad.txt");
  EXPECT_NE(bad_rc, 0);
  EXPECT_NE(bad.find("expected =, !=, =~ or !~"), std::string::npos) << bad;
  const std::string log = testing::readFile(dir.path() + "/log.txt");
  EXPECT_NE(log.find("audit: alice created silence " + id), std::string::npos) << log;
  EXPECT_EQ(log.find(token), std::string::npos) << "a token in the log";
}

}  // namespace
}  // namespace greenlight

namespace greenlight::testing {
namespace {

TEST(Cli, SecretsAreSealedRotatedAndReadByConfigsByName) {
  TempDir dir;
  auto run = [&](std::vector<std::string> args, const std::string& out) {
    args.insert(args.begin(), GREENLIGHT_BINARY);
    ChildProcess p(args, dir.path() + "/" + out);
    return p.wait(std::chrono::seconds(10));
  };
  ASSERT_EQ(run({"secrets", "keygen", "-o", dir.path() + "/k1"}, "keygen.txt"), 0);
  EXPECT_NE(run({"secrets", "keygen", "-o", dir.path() + "/k1"}, "again.txt"), 0) << "a key is never overwritten";
  const std::string plain = dir.write("plain.yaml", "client_secret: \"s3cr3t-Zq9\"\n");
  ASSERT_EQ(run({"secrets", "encrypt", "--key-file", dir.path() + "/k1", "-i", plain, "-o", dir.path() + "/secrets.enc"}, "enc.txt"), 0)
      << readFile(dir.path() + "/enc.txt");
  EXPECT_EQ(readFile(dir.path() + "/secrets.enc").find("s3cr3t"), std::string::npos);
  const std::string config = dir.write("run.yaml", "secrets: {file: secrets.enc, key_file: " + dir.path() + "/k1}\n"
      "probes:\n  - name: a\n    url: https://x/\n    headers: {X-Key: \"${secret:client_secret}\"}\n");
  ASSERT_EQ(run({"check-config", config}, "check.txt"), 0) << readFile(dir.path() + "/check.txt");
  EXPECT_EQ(readFile(dir.path() + "/check.txt").find("s3cr3t"), std::string::npos);
  ASSERT_EQ(run({"secrets", "keygen", "-o", dir.path() + "/k2"}, "keygen2.txt"), 0);
  ASSERT_EQ(run({"secrets", "rotate-key", "--key-file", dir.path() + "/k1", "--new-key-file", dir.path() + "/k2", "-i",
                 dir.path() + "/secrets.enc"}, "rotate.txt"), 0) << readFile(dir.path() + "/rotate.txt");
  EXPECT_EQ(run({"check-config", config}, "check-old-key.txt"), 1) << "the old key no longer opens it";
  EXPECT_NE(readFile(dir.path() + "/check-old-key.txt").find("authentication failed"), std::string::npos);
  ASSERT_EQ(run({"secrets", "decrypt", "--key-file", dir.path() + "/k2", "-i", dir.path() + "/secrets.enc"}, "dec.txt"), 0);
  EXPECT_NE(readFile(dir.path() + "/dec.txt").find("client_secret: \"s3cr3t-Zq9\""), std::string::npos) << readFile(dir.path() + "/dec.txt");
  std::string sealed = readFile(dir.path() + "/secrets.enc");
  sealed[sealed.size() / 2] = static_cast<char>(sealed[sealed.size() / 2] ^ 0x20);
  dir.write("secrets.enc", sealed);
  EXPECT_EQ(run({"secrets", "decrypt", "--key-file", dir.path() + "/k2", "-i", dir.path() + "/secrets.enc"}, "tampered.txt"), 1);
  EXPECT_NE(readFile(dir.path() + "/tampered.txt").find("authentication failed"), std::string::npos);
}

TEST(Cli, TokenNewAndHashGiveSaltedEntriesThatVerify) {
  TempDir dir;
  ChildProcess made({GREENLIGHT_BINARY, "token", "new", "--name", "ci", "--role", "admin"}, dir.path() + "/new.txt");
  ASSERT_EQ(made.wait(std::chrono::seconds(10)), 0);
  const std::string out = readFile(dir.path() + "/new.txt");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("\n  ([0-9a-f]{48})\n"))) << out;
  const std::string token = m[1];
  ASSERT_TRUE(std::regex_search(out, m, std::regex("\\{name: ci, role: admin, token_hash: \"(sha256:[0-9a-f:]+)\"\\}"))) << out;
  TokenHash h;
  ASSERT_TRUE(parseTokenHash(m[1].str(), &h));
  EXPECT_TRUE(constantTimeEqual(saltedSha256(h.salt, token), h.digest));
  // The printed entry is a valid config line.
  const std::string config = dir.write("run.yaml", "admin:\n  tokens:\n    - {name: ci, role: admin, token_hash: \"" + m[1].str() +
                                                       "\"}\nprobes: []\n");
  ChildProcess check({GREENLIGHT_BINARY, "check-config", config}, dir.path() + "/check.txt");
  EXPECT_EQ(check.wait(std::chrono::seconds(10)), 0) << readFile(dir.path() + "/check.txt");
  // `token hash` reads the token on stdin (never from the command line, where ps would show it).
  ChildProcess hashed({"/bin/sh", "-c", "echo " + token + " | " + GREENLIGHT_BINARY + " token hash"}, dir.path() + "/hash.txt");
  ASSERT_EQ(hashed.wait(std::chrono::seconds(10)), 0);
  std::string line = readFile(dir.path() + "/hash.txt");
  line = line.substr(0, line.find('\n'));
  ASSERT_TRUE(parseTokenHash(line, &h)) << line;
  EXPECT_TRUE(constantTimeEqual(saltedSha256(h.salt, token), h.digest));
  ChildProcess short_one({"/bin/sh", "-c", std::string("echo short | ") + GREENLIGHT_BINARY + " token hash"}, dir.path() + "/short.txt");
  EXPECT_NE(short_one.wait(std::chrono::seconds(10)), 0);
}

}  // namespace
}  // namespace greenlight::testing
