#include "greenlight/probes/probe_run.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace greenlight::probes {
namespace {

using namespace std::chrono_literals;
using testing::ScriptedTransport;

class ProbeRunTest : public ::testing::Test {
 protected:
  ProbeRunTest() : random_(7) {}

  std::shared_ptr<ProbeRun> start(const ProbeSpec& spec) {
    results_.clear();
    return ProbeRun::start(std::make_shared<const ProbeSpec>(spec),
                           RunContext{transport_, sim_.scheduler(), random_, tokens_},
                           [this](ProbeResult r) { results_.push_back(std::move(r)); });
  }

  static ProbeSpec httpProbe(std::vector<std::string> conditions = {"[STATUS] == 200"}) {
    ProbeSpec p;
    p.name = "p";
    p.timeout = 5s;
    StepSpec s;
    s.name = "main";
    s.url = "https://api.example/health";
    for (const auto& c : conditions) s.conditions.push_back(parseCondition(c).value());
    p.steps.push_back(s);
    return p;
  }

  static ProbeSpec flowProbe() {
    ProbeSpec p;
    p.name = "flow";
    p.timeout = 10s;
    StepSpec token;
    token.name = "token";
    token.kind = StepKind::kOAuth2;
    token.oauth2.token_url = "https://api.example/oauth2/token";
    token.oauth2.client_id = "client id";
    token.oauth2.client_secret = "s3cret";
    token.oauth2.scopes = {"read_odometer", "read_vehicle_info"};
    token.oauth2.refresh_before = 60s;
    StepSpec vehicles;
    vehicles.name = "vehicles";
    vehicles.url = "https://api.example/v2.0/vehicles";
    vehicles.headers = {{"Authorization", "Bearer ${token}"}};
    vehicles.conditions.push_back(parseCondition("[STATUS] == 200").value());
    vehicles.captures.push_back({"vehicle_id", "[BODY].vehicles[0].id",
                                 parseCondition("[BODY].vehicles[0].id == x")->left});
    StepSpec odometer;
    odometer.name = "odometer";
    odometer.url = "https://api.example/v2.0/vehicles/${vehicle_id}/odometer";
    odometer.headers = {{"Authorization", "Bearer ${token}"}};
    odometer.conditions.push_back(parseCondition("[BODY].data.odometer.distance > 0").value());
    p.steps = {token, vehicles, odometer};
    return p;
  }

  SimulatedScheduler sim_;
  ScriptedTransport transport_;
  DefaultRandom random_;
  TokenCache tokens_;
  std::vector<ProbeResult> results_;
};

TEST_F(ProbeRunTest, PassingStepGivesSuccess) {
  auto run = start(httpProbe());
  ASSERT_EQ(transport_.pendingCount(), 1u);
  EXPECT_EQ(transport_.pendingRequest().url, "https://api.example/health");
  EXPECT_FALSE(transport_.pendingRequest().keep_body) << "a status-only check keeps no body";
  sim_.advance(40ms);
  transport_.completeNext(ScriptedTransport::ok(200, "", 40ms));
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_TRUE(results_[0].success);
  EXPECT_EQ(results_[0].reason, FailureReason::kNone);
  EXPECT_EQ(results_[0].duration, 40ms);
  EXPECT_EQ(results_[0].steps[0].conditions[0].actual, "200");
}

TEST_F(ProbeRunTest, FailedConditionNamesItAndTheValueSeen) {
  auto run = start(httpProbe({"[STATUS] == 200", "[BODY].status == ok"}));
  EXPECT_TRUE(transport_.pendingRequest().keep_body);
  transport_.completeNext(ScriptedTransport::ok(503, R"({"status":"down"})"));
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_FALSE(results_[0].success);
  EXPECT_EQ(results_[0].reason, FailureReason::kStatus);
  EXPECT_EQ(results_[0].message, "step main: [STATUS] == 200 (got 503)");
  ASSERT_EQ(results_[0].steps[0].conditions.size(), 2u);
  EXPECT_EQ(results_[0].steps[0].conditions[1].actual, "down");
}

TEST_F(ProbeRunTest, TransportFailureKeepsItsReason) {
  auto run = start(httpProbe());
  transport_.completeNext(ScriptedTransport::failed(FailureReason::kTls, "SSL certificate problem: certificate has expired"));
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_EQ(results_[0].reason, FailureReason::kTls);
  EXPECT_EQ(results_[0].message, "step main: SSL certificate problem: certificate has expired");
}

TEST_F(ProbeRunTest, TimeoutCancelsTheRequestAtTheDeadline) {
  auto run = start(httpProbe());
  const RequestId id = 1;
  sim_.advance(4999ms);
  EXPECT_TRUE(results_.empty());
  EXPECT_EQ(transport_.pendingRequest().timeout, 5s) << "the transport gets the time left";
  sim_.advance(1ms);
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_EQ(results_[0].reason, FailureReason::kTimeout);
  EXPECT_EQ(results_[0].duration, 5s);
  EXPECT_EQ(transport_.cancelled(), std::vector<RequestId>{id});
  EXPECT_EQ(results_[0].message, "step main: no answer within the probe's timeout of 5s");
}

TEST_F(ProbeRunTest, RetriesWithBackoffThenSucceeds) {
  ProbeSpec spec = httpProbe();
  spec.retry = {3, 100ms, 5s};
  auto run = start(spec);
  transport_.completeNext(ScriptedTransport::failed(FailureReason::kConnect, "Connection refused"));
  EXPECT_EQ(transport_.pendingCount(), 0u) << "waits before retrying";
  sim_.advance(79ms);  // jitter keeps the first wait within 80..120 ms
  EXPECT_EQ(transport_.pendingCount(), 0u);
  sim_.advance(41ms);
  ASSERT_EQ(transport_.pendingCount(), 1u);
  transport_.completeNext(ScriptedTransport::ok(200));
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_TRUE(results_[0].success);
  EXPECT_EQ(results_[0].attempts, 2);
}

TEST_F(ProbeRunTest, NoRetryStartsPastTheDeadline) {
  ProbeSpec spec = httpProbe();
  spec.timeout = 1s;
  spec.retry = {5, 2s, 5s};
  auto run = start(spec);
  transport_.completeNext(ScriptedTransport::failed(FailureReason::kConnect, "refused"));
  ASSERT_EQ(results_.size(), 1u) << "a retry would end after the timeout: report now";
  EXPECT_EQ(results_[0].attempts, 1);
  EXPECT_EQ(results_[0].reason, FailureReason::kConnect);
}

TEST_F(ProbeRunTest, FlowGetsATokenCapturesAndSubstitutes) {
  auto run = start(flowProbe());
  ASSERT_EQ(transport_.pendingCount(), 1u);
  const auto token_req = transport_.pendingRequest();
  EXPECT_EQ(token_req.method, "POST");
  EXPECT_EQ(token_req.body, "grant_type=client_credentials&scope=read_odometer%20read_vehicle_info");
  bool basic = false;
  for (const auto& [k, v] : token_req.headers) basic = basic || (k == "Authorization" && v == "Basic Y2xpZW50JTIwaWQ6czNjcmV0");
  EXPECT_TRUE(basic) << "client credentials go in a Basic header, form-encoded";
  transport_.completeNext(ScriptedTransport::ok(200, R"({"access_token":"tok-1","expires_in":3600})"));

  ASSERT_EQ(transport_.pendingCount(), 1u);
  EXPECT_EQ(transport_.pendingRequest().headers[0].second, "Bearer tok-1");
  transport_.completeNext(ScriptedTransport::ok(200, R"({"vehicles":[{"id":"bmw-0001"}]})"));

  ASSERT_EQ(transport_.pendingCount(), 1u);
  EXPECT_EQ(transport_.pendingRequest().url, "https://api.example/v2.0/vehicles/bmw-0001/odometer");
  transport_.completeNext(ScriptedTransport::ok(200, R"({"data":{"odometer":{"distance":42.5}}})"));

  ASSERT_EQ(results_.size(), 1u);
  EXPECT_TRUE(results_[0].success) << results_[0].message;
  ASSERT_EQ(results_[0].steps.size(), 3u);
  EXPECT_EQ(results_[0].steps[2].conditions[0].actual, "42.5");
}

TEST_F(ProbeRunTest, TokenIsReusedUntilShortlyBeforeExpiry) {
  auto run = start(flowProbe());
  transport_.completeNext(ScriptedTransport::ok(200, R"({"access_token":"tok-1","expires_in":600})"));
  transport_.completeNext(ScriptedTransport::ok(200, R"({"vehicles":[{"id":"v"}]})"));
  transport_.completeNext(ScriptedTransport::ok(200, R"({"data":{"odometer":{"distance":1}}})"));
  ASSERT_TRUE(results_.at(0).success);

  sim_.advance(500s);  // before expiry minus refresh_before (600 - 60 s)
  run = start(flowProbe());
  ASSERT_EQ(transport_.pendingCount(), 1u);
  EXPECT_EQ(transport_.pendingRequest().url, "https://api.example/v2.0/vehicles") << "cached token used";
  EXPECT_EQ(transport_.pendingRequest().headers[0].second, "Bearer tok-1");
  transport_.completeNext(ScriptedTransport::ok(200, R"({"vehicles":[{"id":"v"}]})"));
  transport_.completeNext(ScriptedTransport::ok(200, R"({"data":{"odometer":{"distance":1}}})"));
  ASSERT_TRUE(results_.at(0).success);
  EXPECT_TRUE(results_[0].steps[0].from_cache);

  sim_.advance(41s);  // now past 540 s: refresh
  run = start(flowProbe());
  EXPECT_EQ(transport_.pendingRequest().url, "https://api.example/oauth2/token");
}

TEST_F(ProbeRunTest, RejectedCachedTokenIsDropped) {
  auto run = start(flowProbe());
  transport_.completeNext(ScriptedTransport::ok(200, R"({"access_token":"tok-1","expires_in":3600})"));
  transport_.completeNext(ScriptedTransport::ok(401, R"({"error":"invalid_token"})"));
  ASSERT_FALSE(results_.at(0).success);
  EXPECT_EQ(tokens_.size(), 0u);
  run = start(flowProbe());
  EXPECT_EQ(transport_.pendingRequest().url, "https://api.example/oauth2/token");
}

TEST_F(ProbeRunTest, MissingCaptureFailsTheStep) {
  auto run = start(flowProbe());
  transport_.completeNext(ScriptedTransport::ok(200, R"({"access_token":"tok-1"})"));
  transport_.completeNext(ScriptedTransport::ok(200, R"({"vehicles":[]})"));
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_EQ(results_[0].reason, FailureReason::kCapture);
  EXPECT_EQ(results_[0].message, "step vehicles: capture vehicle_id: [BODY].vehicles[0].id is missing");
  EXPECT_EQ(transport_.pendingCount(), 0u) << "later steps do not run";
}

TEST_F(ProbeRunTest, TokenEndpointErrorsAreReported) {
  auto run = start(flowProbe());
  transport_.completeNext(ScriptedTransport::ok(401, R"({"error":"invalid_client"})"));
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_EQ(results_[0].reason, FailureReason::kStatus);
  EXPECT_EQ(results_[0].message, "step token: token endpoint answered 401");
  EXPECT_EQ(results_[0].message.find("s3cret"), std::string::npos);
}

TEST_F(ProbeRunTest, CancelledRunNeverCallsBack) {
  auto run = start(httpProbe());
  run->cancel();
  sim_.advance(10s);
  EXPECT_TRUE(results_.empty());
  EXPECT_EQ(transport_.pendingCount(), 0u);
}

}  // namespace
}  // namespace greenlight::probes
