#include "greenlight/simulator/simulator.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/ssl.h>


#include <nlohmann/json.hpp>

#include "support/test_backend.h"
#include "support/test_support.h"

namespace greenlight::simulator {
namespace {

using namespace std::chrono_literals;

class SimulatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SimulatorOptions o;
    for (auto& oem : o.oems) oem.latency = oem.jitter = 0ms;
    o.releases = {"blue", "green"};
    auto s = Simulator::start(o);
    ASSERT_TRUE(s.ok()) << s.status().message();
    sim_ = std::move(s.value());
  }

  std::unique_ptr<httplib::SSLClient> clientPtr(int port) {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
    c->set_ca_cert_path(sim_->caFile().c_str());
    c->enable_server_certificate_verification(true);
    c->set_read_timeout(5);
    return c;
  }

  std::string token(int port) {
    auto cp = clientPtr(port);
    auto& c = *cp;
    c.set_basic_auth(sim_->options().client_id, sim_->options().client_secret);
    auto res = c.Post("/oauth2/token", "grant_type=client_credentials", "application/x-www-form-urlencoded");
    EXPECT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    return nlohmann::json::parse(res->body)["access_token"];
  }

  std::unique_ptr<Simulator> sim_;
};

// A stop does not wait out a client that holds a kept-alive connection open (cpp-httplib looks
// for the stop only once the keep-alive wait ends: 5 s by default).
TEST(SimulatorStop, AStopDoesNotWaitOutAKeptAliveClient) {
  SimulatorOptions o;
  o.tls = false;
  auto s = Simulator::start(o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  std::unique_ptr<Simulator> sim = std::move(s.value());
  testing::RawConnection kept(sim->platformPort());
  ASSERT_TRUE(kept.send("GET /health HTTP/1.1\r\nHost: platform\r\n\r\n"));
  ASSERT_EQ(kept.read().status, 200);
  EXPECT_TRUE(testing::returnsWithin([&] { sim->stop(); }, 3s)) << "the stop waited for the kept-alive connection";
  EXPECT_TRUE(kept.closedWithin(1s));
}

TEST_F(SimulatorTest, IssuesTokensOnlyForValidClientCredentials) {
  auto cp = clientPtr(sim_->platformPort());
    auto& c = *cp;
  auto no_grant = c.Post("/oauth2/token", "grant_type=password", "application/x-www-form-urlencoded");
  ASSERT_TRUE(no_grant);
  EXPECT_EQ(no_grant->status, 400);
  c.set_basic_auth(sim_->options().client_id, "wrong");
  auto bad = c.Post("/oauth2/token", "grant_type=client_credentials", "application/x-www-form-urlencoded");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  auto in_body = clientPtr(sim_->platformPort())->Post(
      "/oauth2/token",
      "grant_type=client_credentials&client_id=" + sim_->options().client_id +
          "&client_secret=" + sim_->options().client_secret,
      "application/x-www-form-urlencoded");
  ASSERT_TRUE(in_body);
  EXPECT_EQ(in_body->status, 200);
  auto j = nlohmann::json::parse(in_body->body);
  EXPECT_EQ(j["token_type"], "Bearer");
  EXPECT_EQ(j["expires_in"], 3600);
  EXPECT_EQ(j["access_token"].get<std::string>().size(), 48u);
}

TEST_F(SimulatorTest, VehicleEndpointsNeedAValidToken) {
  auto cp = clientPtr(sim_->oemPort("bmw"));
    auto& c = *cp;
  auto anon = c.Get("/v2.0/vehicles");
  ASSERT_TRUE(anon);
  EXPECT_EQ(anon->status, 401);
  const std::string t = token(sim_->oemPort("bmw"));
  httplib::Headers auth = {{"Authorization", "Bearer " + t}};
  auto list = c.Get("/v2.0/vehicles", auth);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200);
  auto vehicles = nlohmann::json::parse(list->body)["vehicles"];
  ASSERT_EQ(vehicles.size(), 2u);
  EXPECT_EQ(vehicles[0]["make"], "bmw");
  auto odo = c.Get("/v2.0/vehicles/bmw-0001/odometer", auth);
  ASSERT_TRUE(odo);
  EXPECT_GT(nlohmann::json::parse(odo->body)["data"]["odometer"]["distance"].get<double>(), 0);
  auto other = c.Get("/v2.0/vehicles/tesla-0001/odometer", auth);
  EXPECT_EQ(other->status, 404) << "an OEM serves only its own vehicles";
}

TEST_F(SimulatorTest, FaultsAreSetAndHealedThroughTheAdminApi) {
  const int admin = sim_->adminPort();
  auto set = testing::httpPost(admin, "/faults/ford", R"({"error_rate":1,"status":500})");
  EXPECT_EQ(set.status, 200) << set.body;
  auto cp = clientPtr(sim_->oemPort("ford"));
    auto& c = *cp;
  EXPECT_EQ(c.Get("/health")->status, 500);
  auto listed = nlohmann::json::parse(testing::httpGet(admin, "/faults").body);
  EXPECT_EQ(listed["ford"]["status"], 500);
  httplib::Client a("127.0.0.1", admin);
  EXPECT_EQ(a.Delete("/faults/ford")->status, 200);
  EXPECT_EQ(c.Get("/health")->status, 200);
}

TEST_F(SimulatorTest, BadFaultRequestsAreRejectedClearly) {
  const int admin = sim_->adminPort();
  auto typo = testing::httpPost(admin, "/faults/ford", R"({"eror_rate":1})");
  EXPECT_EQ(typo.status, 400);
  EXPECT_NE(typo.body.find("unknown key \\\"eror_rate\\\""), std::string::npos) << typo.body;
  EXPECT_EQ(testing::httpPost(admin, "/faults/ford", R"({"error_rate":2})").status, 400);
  EXPECT_EQ(testing::httpPost(admin, "/faults/ford", "not json").status, 400);
  EXPECT_EQ(testing::httpPost(admin, "/faults/volvo", R"({"hang":true})").status, 404);
}

TEST_F(SimulatorTest, HangIsReleasedWhenHealed) {
  ASSERT_TRUE(sim_->setFault("tesla", Fault{.hang = true}).ok());
  std::atomic<int> status{0};
  std::thread t([&] {
    auto cp = clientPtr(sim_->oemPort("tesla"));
    auto& c = *cp;
    c.set_read_timeout(30);
    auto r = c.Get("/health");
    status = r ? r->status : -1;
  });
  // The request is parked; healing answers it.
  EXPECT_FALSE(testing::waitUntil([&] { return status != 0; }, 300ms));
  sim_->clearFaults("tesla");
  EXPECT_TRUE(testing::waitUntil([&] { return status != 0; }));
  t.join();
  EXPECT_EQ(status, 503);
}

TEST_F(SimulatorTest, HttpsListenersRefuseProtocolsOlderThanTls12) {
  EXPECT_FALSE(testing::tlsHandshakes(sim_->platformPort(), TLS1_1_VERSION));
  EXPECT_TRUE(testing::tlsHandshakes(sim_->platformPort(), TLS1_2_VERSION));
  EXPECT_TRUE(testing::tlsHandshakes(sim_->platformPort(), TLS1_3_VERSION));
}

TEST_F(SimulatorTest, InfoNamesEveryEndpoint) {
  auto info = nlohmann::json::parse(sim_->infoJson());
  EXPECT_EQ(info["platform"]["port"], sim_->platformPort());
  EXPECT_EQ(info["oems"].size(), 4u);
  EXPECT_EQ(info["ca_file"], sim_->caFile());
  EXPECT_FALSE(info.contains("client_secret")) << "no secret in the info document";
}

// A kept-alive request must not wait for the client's delayed ACK (40 ms): the demo's traffic
// through its proxy ran at 16 requests a second instead of 50, too few for a rollout's analysis.
TEST_F(SimulatorTest, KeptAliveRequestsAreAnsweredWithoutWaitingForADelayedAck) {
  EXPECT_LT(testing::keepAliveMedian(sim_->releasePort("blue"), "/", 15), 20ms);
  EXPECT_LT(testing::keepAliveMedian(sim_->platformPort(), "/health", 15, true), 20ms);
  EXPECT_LT(testing::keepAliveMedian(sim_->adminPort(), "/faults", 15), 20ms);
}

}  // namespace
}  // namespace greenlight::simulator
