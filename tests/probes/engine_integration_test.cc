// The real probe engine (libcurl multi) against the simulator over real sockets and TLS.
#include <gtest/gtest.h>

#include "greenlight/probes/curl_transport.h"
#include "greenlight/probes/probe_engine.h"
#include "greenlight/probes/probe_run.h"
#include "greenlight/simulator/simulator.h"
#include "support/test_support.h"

namespace greenlight::probes {
namespace {

using namespace std::chrono_literals;
using simulator::Fault;
using simulator::Simulator;

class EngineIntegration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    simulator::SimulatorOptions o;
    o.oems = simulator::SimulatorOptions::defaultOems();
    for (auto& oem : o.oems) {
      oem.latency = 1ms;
      oem.jitter = 0ms;
    }
    o.oems.push_back({"expired", 1ms, 0ms, 0, 24h, -48h});  // expired a day ago
    auto sim = Simulator::start(o);
    ASSERT_TRUE(sim.ok()) << sim.status().message();
    sim_ = std::move(sim.value()).release();
  }
  static void TearDownTestSuite() { delete sim_; }
  void TearDown() override { sim_->clearFaults(""); }

  ProbeResult runOnce(const ProbeSpec& spec) { return testing::runProbeOnce(spec, &tokens_); }

  static std::string url(const std::string& target, const std::string& path) {
    int port = target == "platform" ? sim_->platformPort() : sim_->oemPort(target);
    return "https://127.0.0.1:" + std::to_string(port) + path;
  }

  static ProbeSpec http(const std::string& target, const std::string& path,
                        std::vector<std::string> conditions = {"[STATUS] == 200"}) {
    ProbeSpec p;
    p.name = "it";
    p.timeout = 2s;
    p.tls.ca_file = sim_->caFile();
    StepSpec s;
    s.name = "main";
    s.url = url(target, path);
    for (const auto& c : conditions) s.conditions.push_back(parseCondition(c).value());
    p.steps.push_back(s);
    return p;
  }

  static ProbeSpec flow(const std::string& target) {
    ProbeSpec p = http(target, "/v2.0/vehicles");
    p.name = "flow";
    StepSpec token;
    token.name = "token";
    token.kind = StepKind::kOAuth2;
    token.oauth2.token_url = url(target, "/oauth2/token");
    token.oauth2.client_id = sim_->options().client_id;
    token.oauth2.client_secret = sim_->options().client_secret;
    StepSpec& vehicles = p.steps[0];
    vehicles.name = "vehicles";
    vehicles.headers = {{"Authorization", "Bearer ${token}"}};
    vehicles.captures.push_back({"vehicle_id", "[BODY].vehicles[0].id", parseCondition("[BODY].vehicles[0].id == x")->left});
    StepSpec odometer;
    odometer.name = "odometer";
    odometer.url = url(target, "/v2.0/vehicles/${vehicle_id}/odometer");
    odometer.headers = {{"Authorization", "Bearer ${token}"}};
    odometer.conditions.push_back(parseCondition("[BODY].data.odometer.distance > 0").value());
    p.steps.insert(p.steps.begin(), token);
    p.steps.push_back(odometer);
    return p;
  }

  static ProbeSpec connectOnly(StepKind kind, const std::string& target, std::vector<std::string> conditions) {
    ProbeSpec p;
    p.name = "conn";
    p.timeout = 2s;
    p.tls.ca_file = sim_->caFile();
    StepSpec s;
    s.name = "main";
    s.kind = kind;
    s.url = "127.0.0.1:" + std::to_string(target == "platform" ? sim_->platformPort() : sim_->oemPort(target));
    for (const auto& c : conditions) s.conditions.push_back(parseCondition(c).value());
    p.steps.push_back(s);
    return p;
  }

  static Simulator* sim_;
  RealTimeSource time_;
  TokenCache tokens_;
};

Simulator* EngineIntegration::sim_ = nullptr;

TEST_F(EngineIntegration, HealthyHttpsProbeReportsPhasesAndCertificate) {
  auto r = runOnce(http("platform", "/health", {"[STATUS] == 200", "[BODY].status == ok",
                                                "[HEADER].content-type == pat(application/json*)"}));
  ASSERT_TRUE(r.success) << r.message;
  const StepResult& s = r.steps.at(0);
  EXPECT_EQ(s.status, 200);
  EXPECT_TRUE(s.ssl);
  EXPECT_EQ(s.http_version, 1.1);
  EXPECT_GT(s.timings.connect.count(), 0);
  EXPECT_GT(s.timings.tls.count(), 0);
  ASSERT_TRUE(s.cert_earliest_expiry.has_value());
  EXPECT_GT(*s.cert_earliest_expiry, time_.wallNow() + 300 * 24h);
}

TEST_F(EngineIntegration, Http2IsNegotiatedWhenAsked) {
  ProbeSpec p = http("platform", "/health");
  p.steps[0].http_version = HttpVersion::kHttp2;
  auto r = runOnce(p);
  ASSERT_TRUE(r.success) << r.message;
  // The simulator speaks HTTP/1.1 only: curl falls back, and the version says so.
  EXPECT_EQ(r.steps[0].http_version, 1.1);
}

TEST_F(EngineIntegration, EachInjectedFaultFailsWithItsReason) {
  struct Case {
    const char* name;
    Fault fault;
    FailureReason want;
  } cases[] = {
      {"error rate", Fault{.error_rate = 1, .error_status = 503}, FailureReason::kStatus},
      {"rate limit", Fault{.rate_limit = 1}, FailureReason::kStatus},
      {"added latency", Fault{.added_latency = 3s}, FailureReason::kTimeout},
      {"hang", Fault{.hang = true}, FailureReason::kTimeout},
      {"reset", Fault{.reset = true}, FailureReason::kConnection},
      {"invalid json", Fault{.invalid_json = true}, FailureReason::kInvalidBody},
  };
  for (const auto& c : cases) {
    ASSERT_TRUE(sim_->setFault("bmw", c.fault).ok());
    auto r = runOnce(http("bmw", "/health", {"[STATUS] == 200", "[BODY].status == ok"}));
    EXPECT_FALSE(r.success) << c.name;
    EXPECT_EQ(reasonName(r.reason), std::string(reasonName(c.want))) << c.name << ": " << r.message;
    sim_->clearFaults("bmw");
  }
  auto healed = runOnce(http("bmw", "/health"));
  EXPECT_TRUE(healed.success) << healed.message;
}

TEST_F(EngineIntegration, RateLimitReportsTheStatusSeen) {
  ASSERT_TRUE(sim_->setFault("ford", Fault{.rate_limit = 1}).ok());
  auto r = runOnce(http("ford", "/health"));
  EXPECT_EQ(r.message, "step main: [STATUS] == 200 (got 429)");
}

TEST_F(EngineIntegration, FaultOnAnOemBreaksItsVehiclesOnThePlatformToo) {
  ASSERT_TRUE(sim_->setFault("bmw", Fault{.error_rate = 1, .error_status = 502}).ok());
  auto r = runOnce(flow("platform"));  // vehicles[0] is a Tesla: unaffected
  EXPECT_TRUE(r.success) << r.message;
  ProbeSpec bmw = flow("platform");
  bmw.steps[1].captures[0].operand = parseCondition("[BODY].vehicles[2].id == x")->left;
  auto broken = runOnce(bmw);
  EXPECT_FALSE(broken.success);
  EXPECT_EQ(broken.steps.back().name, "odometer");
  EXPECT_EQ(broken.steps.back().status, 502);
}

TEST_F(EngineIntegration, UntrustedCertificateFails) {
  ProbeSpec p = http("platform", "/health");
  p.tls.ca_file.clear();  // system trust store: does not know the simulator's CA
  auto r = runOnce(p);
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.reason, FailureReason::kTls) << r.message;
}

TEST_F(EngineIntegration, ExpiredCertificateFailsUnlessVerificationIsOff) {
  auto r = runOnce(http("expired", "/health"));
  EXPECT_EQ(r.reason, FailureReason::kTls) << r.message;
  EXPECT_NE(r.message.find("expired"), std::string::npos) << r.message;
  ProbeSpec lax = http("expired", "/health");
  lax.tls.insecure_skip_verify = true;
  auto ok = runOnce(lax);
  EXPECT_TRUE(ok.success) << ok.message;
}

TEST_F(EngineIntegration, TlsProbeChecksCertificateExpiry) {
  auto near = runOnce(connectOnly(StepKind::kTls, "bmw", {"[CERTIFICATE_EXPIRATION] > 72h"}));
  EXPECT_FALSE(near.success);
  EXPECT_EQ(near.reason, FailureReason::kCertificate) << near.message;
  auto fine = runOnce(connectOnly(StepKind::kTls, "tesla", {"[CERTIFICATE_EXPIRATION] > 72h"}));
  EXPECT_TRUE(fine.success) << fine.message;
}

TEST_F(EngineIntegration, TlsProbeVerifiesTheServerName) {
  ProbeSpec p = connectOnly(StepKind::kTls, "tesla", {"[CONNECTED] == true"});
  p.tls.server_name = "localhost";  // in the certificate: fine
  EXPECT_TRUE(runOnce(p).success);
  p.tls.server_name = "api.other.example";  // not in the certificate
  auto r = runOnce(p);
  EXPECT_EQ(r.reason, FailureReason::kTls) << r.message;
}

TEST_F(EngineIntegration, TcpProbeConnectsOrFailsToConnect) {
  auto ok = runOnce(connectOnly(StepKind::kTcp, "hyundai", {"[CONNECTED] == true"}));
  EXPECT_TRUE(ok.success) << ok.message;
  ProbeSpec closed = connectOnly(StepKind::kTcp, "hyundai", {"[CONNECTED] == true"});
  closed.steps[0].url = "127.0.0.1:" + std::to_string(testing::freePort());
  auto r = runOnce(closed);
  EXPECT_EQ(r.reason, FailureReason::kConnect) << r.message;
}

TEST_F(EngineIntegration, OAuth2FlowCapturesAndReusesItsToken) {
  const int before = sim_->tokensIssued();
  auto first = runOnce(flow("tesla"));
  ASSERT_TRUE(first.success) << first.message;
  auto second = runOnce(flow("tesla"));
  ASSERT_TRUE(second.success) << second.message;
  EXPECT_TRUE(second.steps[0].from_cache);
  EXPECT_EQ(sim_->tokensIssued() - before, 1) << "one token for both runs";
}

TEST_F(EngineIntegration, WrongClientSecretIsReportedWithoutLeakingIt) {
  ProbeSpec p = flow("tesla");
  p.steps[0].oauth2.client_secret = "definitely-wrong-secret";
  auto r = runOnce(p);
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.message, "step token: token endpoint answered 401");
}

TEST_F(EngineIntegration, EngineRunsProbesOnItsOwnThreadAndAppliesNewConfig) {
  RealTimeSource time;
  DefaultRandom random(3);
  ProbeEngine engine(time, random);
  ProbeSpec a = http("platform", "/health");
  a.name = "a";
  a.interval = 200ms;
  a.timeout = 200ms;
  engine.apply({a});
  engine.start();
  ASSERT_TRUE(testing::waitUntil([&] {
    auto s = engine.snapshot();
    return s.size() == 1 && s[0].last && s[0].last->success;
  }));
  ProbeSpec b = a;
  b.name = "b";
  engine.apply({b});
  auto s = engine.snapshot();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].spec->name, "b");
  engine.stop();
}

}  // namespace
}  // namespace greenlight::probes
