#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>
#include <vector>

#include "greenlight/common/files.h"
#include "greenlight/proxy/proxy_config.h"
#include "greenlight/proxy/routing_store.h"
#include "support/test_support.h"

namespace greenlight::proxy {
namespace {

ServiceRoutes service(int blue, int green) {
  ServiceRoutes s;
  s.name = "vehicles";
  s.weight = {blue, green};
  s.endpoints[0] = {Endpoint{"127.0.0.1:1", "127.0.0.1", 1, EndpointState::kReady}};
  s.endpoints[1] = {Endpoint{"127.0.0.1:2", "127.0.0.1", 2, EndpointState::kReady}};
  return s;
}

RoutingTable table(int blue, int green) {
  RoutingTable t;
  t.services["vehicles"] = service(blue, green);
  return t;
}

TEST(PickColor, FollowsWeights) {
  auto s = service(90, 10);
  int green = 0;
  for (int i = 0; i < 1000; ++i) green += pickColor(s, i / 1000.0, std::nullopt) == Color::kGreen;
  EXPECT_EQ(green, 100);
  EXPECT_EQ(pickColor(service(100, 0), 0.999, std::nullopt), Color::kBlue);
  EXPECT_EQ(pickColor(service(0, 100), 0.0, std::nullopt), Color::kGreen);
}

TEST(PickColor, PreviewWinsOverWeightWhenItCanServe) {
  auto s = service(100, 0);
  EXPECT_EQ(pickColor(s, 0.5, Color::kGreen), Color::kGreen);
  s.endpoints[1][0].state = EndpointState::kMaint;
  EXPECT_EQ(pickColor(s, 0.5, Color::kGreen), Color::kBlue);
}

TEST(PickColor, NeverFallsBackToAColourWithoutWeight) {
  auto s = service(100, 0);
  s.endpoints[0][0].state = EndpointState::kDrain;
  EXPECT_FALSE(pickColor(s, 0.5, std::nullopt).has_value());
}

TEST(PreviewCookie, FindsTheNamedCookie) {
  EXPECT_EQ(previewFromCookie("a=b; greenlight-color=green; c=d", "greenlight-color"), Color::kGreen);
  EXPECT_EQ(previewFromCookie("greenlight-color=blue", "greenlight-color"), Color::kBlue);
  EXPECT_FALSE(previewFromCookie("greenlight-color=purple", "greenlight-color").has_value());
  EXPECT_FALSE(previewFromCookie("other=green", "greenlight-color").has_value());
}

TEST(Cookie, ValueIsFoundByExactNameOnly) {
  EXPECT_EQ(cookieValue("a=b; session=s1; c=d", "session"), "s1");
  EXPECT_EQ(cookieValue("session=", "session"), "");
  EXPECT_FALSE(cookieValue("xsession=s1; sessionx=s2", "session").has_value());
  EXPECT_FALSE(cookieValue("", "session").has_value());
}

// The keys of many clients, as an affinity header would carry them.
std::vector<std::string> clientKeys(int n) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) keys.push_back("Bearer app-" + std::to_string(i));
  return keys;
}

TEST(Affinity, TheSameKeyAlwaysGetsTheSamePointAndKeysSpreadEvenly) {
  const auto keys = clientKeys(10000);
  std::array<int, 10> decile{};
  for (const auto& k : keys) {
    const double p = affinityPoint(k);
    ASSERT_GE(p, 0.0);
    ASSERT_LT(p, 1.0);
    EXPECT_EQ(p, affinityPoint(std::string(k)));
    ++decile[static_cast<size_t>(p * 10)];
  }
  // 1,000 expected per tenth; keys that differ only in their last characters must not bunch.
  for (int n : decile) {
    EXPECT_GT(n, 880);
    EXPECT_LT(n, 1120);
  }
  EXPECT_NE(affinityPoint("10.0.0.1"), affinityPoint("10.0.0.2"));
}

TEST(Affinity, KeysOnTheGrowingColourStayThereAndTheSplitFollowsTheWeights) {
  const auto keys = clientKeys(5000);
  std::set<std::string> on_green_before;
  for (int green : {0, 10, 25, 50, 90, 100}) {
    const auto s = service(100 - green, green);
    std::set<std::string> on_green;
    for (const auto& k : keys) {
      if (pickColor(s, affinityPoint(k), std::nullopt) == Color::kGreen) on_green.insert(k);
    }
    for (const auto& k : on_green_before) EXPECT_TRUE(on_green.count(k)) << k << " left green when its weight went up to " << green;
    EXPECT_NEAR(on_green.size() / 5000.0, green / 100.0, 0.03) << "green at " << green;
    on_green_before = on_green;
  }
  // Back the other way (a new release in blue this time): the keys on blue only grow.
  std::set<std::string> on_blue_before;
  for (int blue : {0, 10, 50, 100}) {
    const auto s = service(blue, 100 - blue);
    std::set<std::string> on_blue;
    for (const auto& k : keys) {
      if (pickColor(s, affinityPoint(k), std::nullopt) == Color::kBlue) on_blue.insert(k);
    }
    for (const auto& k : on_blue_before) EXPECT_TRUE(on_blue.count(k)) << k;
    EXPECT_NEAR(on_blue.size() / 5000.0, blue / 100.0, 0.03) << "blue at " << blue;
    on_blue_before = on_blue;
  }
}

struct CommandCase {
  const char* line;
  bool ok;
  const char* output_contains;
};

class RuntimeCommands : public ::testing::TestWithParam<CommandCase> {};
void PrintTo(const CommandCase& c, std::ostream* os) { *os << c.line; }

TEST_P(RuntimeCommands, AnswerAsExpected) {
  const auto& c = GetParam();
  auto r = runCommand(table(100, 0), c.line);
  EXPECT_EQ(r.ok, c.ok) << r.output;
  EXPECT_NE(r.output.find(c.output_contains), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(
    Table, RuntimeCommands,
    ::testing::Values(
        CommandCase{"set weight vehicles blue 90 green 10", true, "ok weights vehicles blue 100->90 green 0->10"},
        CommandCase{"set weight vehicles green 100 blue 0\n", true, "blue 100->0 green 0->100"},
        CommandCase{"set weight vehicles blue 90 green 20", false, "must add up to 100, got 110"},
        CommandCase{"set weight vehicles blue 90", false, "usage: set weight"},
        CommandCase{"set weight vehicles blue x green 100", false, "whole numbers from 0 to 100"},
        CommandCase{"set weight vehicles red 50 green 50", false, "expected blue or green"},
        CommandCase{"set weight trucks blue 50 green 50", false, "no service \"trucks\""},
        CommandCase{"set endpoint vehicles green 127.0.0.1:2 state drain", true, "state ready->drain"},
        CommandCase{"set endpoint vehicles blue 127.0.0.1:1 state maint", false, "no ready endpoint"},
        CommandCase{"set endpoint vehicles blue 127.0.0.1:9 state drain", false, "no blue endpoint 127.0.0.1:9"},
        CommandCase{"set endpoint vehicles blue 127.0.0.1:1 state sleepy", false, "expected ready, drain or maint"},
        CommandCase{"set mirror vehicles 25", true, "ok mirror vehicles 0->25"},
        CommandCase{"set mirror vehicles 101", false, "a whole number from 0 to 100, got \"101\""},
        CommandCase{"set mirror vehicles", false, "usage: set mirror SERVICE PERCENT"},
        CommandCase{"set mirror trucks 10", false, "no service \"trucks\""},
        CommandCase{"show routes", true, "\"weights\""},
        CommandCase{"help", true, "set weight SERVICE"},
        CommandCase{"", false, "empty command"},
        CommandCase{"drop table", false, "unknown command"}));

TEST(RuntimeCommand, AChangeMakesANewVersionAndLeavesTheOldTableAlone) {
  const RoutingTable t = table(100, 0);
  auto r = runCommand(t, "set weight vehicles blue 0 green 100");
  ASSERT_TRUE(r.table);
  EXPECT_EQ(r.table->version, t.version + 1);
  EXPECT_EQ(r.table->services.at("vehicles").weight, (std::array<int, 2>{0, 100}));
  EXPECT_EQ(t.services.at("vehicles").weight, (std::array<int, 2>{100, 0}));
}

TEST(RuntimeCommand, RefusesWeightOnAColourThatCannotServe) {
  RoutingTable t = table(100, 0);
  t.services["vehicles"].endpoints[1][0].state = EndpointState::kMaint;
  auto r = runCommand(t, "set weight vehicles blue 50 green 50");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.output.find("green has no ready endpoint"), std::string::npos);
}

TEST(RoutingStore, PersistsBeforeApplyingAndRestoresAtOpen) {
  testing::TempDir dir;
  const std::string file = dir.path() + "/routes.json";
  {
    auto store = RoutingStore::open(table(100, 0), file);
    ASSERT_TRUE(store.ok());
    auto r = (*store)->execute("set weight vehicles blue 20 green 80", "test");
    ASSERT_TRUE(r.ok) << r.output;
    EXPECT_EQ((*store)->current()->services.at("vehicles").weight, (std::array<int, 2>{20, 80}));
  }
  auto reopened = RoutingStore::open(table(100, 0), file);  // config says 100/0; the file wins
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->current()->services.at("vehicles").weight, (std::array<int, 2>{20, 80}));
  EXPECT_EQ((*reopened)->current()->version, 1u);
}

TEST(RoutingStore, TheMirroredPercentageIsPersistedAndAnOlderFileKeepsTheConfigs) {
  testing::TempDir dir;
  const std::string file = dir.path() + "/routes.json";
  {
    auto store = RoutingStore::open(table(100, 0), file);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->execute("set mirror vehicles 30", "test").ok);
  }
  auto reopened = RoutingStore::open(table(100, 0), file);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->current()->services.at("vehicles").mirror, 30);

  // A state file from before mirroring existed: the config's percentage stays.
  RoutingTable configured = table(100, 0);
  configured.services["vehicles"].mirror = 10;
  const std::string old_file = dir.write("old.json", R"({"version": 3, "services": {"vehicles": {"weights": {"blue": 0, "green": 100}}}})");
  auto old = RoutingStore::open(configured, old_file);
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_EQ((*old)->current()->services.at("vehicles").mirror, 10);
  EXPECT_EQ((*old)->current()->services.at("vehicles").weight, (std::array<int, 2>{0, 100}));
  const std::string bad_file = dir.write("bad.json", R"({"services": {"vehicles": {"weights": {"blue": 100, "green": 0}, "mirror": 150}}})");
  EXPECT_FALSE(RoutingStore::open(configured, bad_file).ok());
}

TEST(MirrorColor, OnlyTheColourAtWeightZeroGetsCopiesAndOnlyThePercentage) {
  auto s = service(100, 0);
  EXPECT_FALSE(mirrorColor(s, Color::kBlue, 0.0).has_value()) << "mirroring is off by default";
  s.mirror = 20;
  int copies = 0;
  for (int i = 0; i < 1000; ++i) copies += mirrorColor(s, Color::kBlue, i / 1000.0) == Color::kGreen;
  EXPECT_EQ(copies, 200);
  EXPECT_FALSE(mirrorColor(s, Color::kGreen, 0.0).has_value()) << "a preview request to the idle colour is not copied there";
  auto both = service(50, 50);
  both.mirror = 100;
  EXPECT_FALSE(mirrorColor(both, Color::kBlue, 0.0).has_value()) << "while both colours have weight";
  auto to_blue = service(0, 100);
  to_blue.mirror = 100;
  EXPECT_EQ(mirrorColor(to_blue, Color::kGreen, 0.5), Color::kBlue);
  to_blue.endpoints[0][0].state = EndpointState::kMaint;
  EXPECT_FALSE(mirrorColor(to_blue, Color::kGreen, 0.5).has_value()) << "no ready endpoint to copy to";
}

TEST(RoutingStore, AReaderSeesAChangeAtItsNextLookAndOldSnapshotsStayValid) {
  auto store = RoutingStore::open(table(100, 0), "");
  ASSERT_TRUE(store.ok());
  RoutingStore::Reader reader(**store);
  auto before = reader.current();
  EXPECT_EQ(reader.current().get(), before.get()) << "no change: the same table, not a reload";
  ASSERT_TRUE((*store)->execute("set weight vehicles blue 30 green 70", "test").ok);
  auto after = reader.current();
  EXPECT_EQ(after->services.at("vehicles").weight, (std::array<int, 2>{30, 70}));
  EXPECT_EQ(after.get(), (*store)->current().get());
  // A request still holding the old table reads it whole.
  EXPECT_EQ(before->services.at("vehicles").weight, (std::array<int, 2>{100, 0}));
  ASSERT_FALSE((*store)->execute("set weight vehicles blue 0 green 0", "test").ok);
  EXPECT_EQ(reader.current().get(), after.get()) << "a refused change changes nothing";
}

TEST(RoutingStore, ACorruptStateFileIsAClearError) {
  testing::TempDir dir;
  const std::string file = dir.write("routes.json", "{not json");
  auto store = RoutingStore::open(table(100, 0), file);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(file), std::string::npos);
}

TEST(RoutingStore, AFailedSaveLeavesTheTableUnchanged) {
  auto store = RoutingStore::open(table(100, 0), "/nonexistent-dir/routes.json");
  ASSERT_TRUE(store.ok());
  auto r = (*store)->execute("set weight vehicles blue 0 green 100", "test");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.output.find("cannot save"), std::string::npos);
  EXPECT_EQ((*store)->current()->services.at("vehicles").weight, (std::array<int, 2>{100, 0}));
}

TEST(ProxyConfig, ReadsServicesAndReportsEveryError) {
  ConfigErrors errors;
  ConfigReader r("p.yaml", errors, testing::fakeEnv({}));
  auto root = r.loadString(R"(proxy:
  services:
    - {name: vehicles, listen: "127.0.0.1:8080", blue: ["127.0.0.1:9001"], green: ["127.0.0.1:9002"],
       weights: {blue: 90, green: 10}, preview: {header: X-Greenlight-Color}}
    - {name: vehicles, listen: "127.0.0.1:8080", blue: ["nowhere"], weights: {blue: 60, green: 60}}
    - {name: odd, listen: "8080", colour: blue}
  timeouts: {connect: 2}
  max_connections: 0
  request_id: {header: X-Forwarded-For}
  spare_buffer_release: 10ms
)");
  auto c = parseProxyConfig(r, (*root)["proxy"], "proxy");
  const std::string all = errors.format();
  for (const char* want : {
           "proxy.services[1].name: another service already has the name \"vehicles\"",
           "proxy.services[1].listen: another service already listens on 127.0.0.1:8080",
           "proxy.services[1].blue: expected host:port endpoints, got \"nowhere\"",
           "proxy.services[1].weights: blue and green must add up to 100",
           "proxy.services[2].colour: unknown key",
           "proxy.services[2].listen: expected host:port",
           "proxy.timeouts.connect: expected a duration",
           "proxy.max_connections: expected a whole number from 1 to 1048576, got \"0\"",
           "proxy.request_id.header: expected a header name (letters, digits, '-') that the proxy does not set itself",
           "proxy.spare_buffer_release: expected a duration of at least 100ms, got \"10ms\"",
       }) {
    EXPECT_NE(all.find(want), std::string::npos) << "missing " << want << "\n" << all;
  }
  const auto& v = c.routes.services.at("vehicles");
  EXPECT_EQ(v.preview_header, "x-greenlight-color");
}

TEST(ProxyConfig, HealthChecksHaveDefaultsAndRefuseWhatCouldBreakTheRequest) {
  ConfigErrors errors;
  ConfigReader r("p.yaml", errors, testing::fakeEnv({}));
  auto root = r.loadString(R"(proxy:
  services:
    - {name: vehicles, listen: "127.0.0.1:8080", blue: ["127.0.0.1:9001"], health_check: {}}
    - {name: oem, listen: "127.0.0.1:8081", blue: ["127.0.0.1:9003"],
       health_check: {path: /ready, host: oem.internal, interval: 500ms, timeout: 100ms, rise: 1, fall: 5}}
    - {name: plain, listen: "127.0.0.1:8082", blue: ["127.0.0.1:9004"]}
)");
  auto c = parseProxyConfig(r, (*root)["proxy"], "proxy");
  ASSERT_TRUE(errors.empty()) << errors.format();
  ASSERT_EQ(c.health_checks.size(), 2u);
  const HealthCheck& d = c.health_checks.at("vehicles");
  EXPECT_EQ(d.path, "/healthz");
  EXPECT_EQ(d.host, "");
  EXPECT_EQ(d.interval, 5s);
  EXPECT_EQ(d.timeout, 2s);
  EXPECT_EQ(d.rise, 2);
  EXPECT_EQ(d.fall, 3);
  const HealthCheck& o = c.health_checks.at("oem");
  EXPECT_EQ(o.path, "/ready");
  EXPECT_EQ(o.host, "oem.internal");
  EXPECT_EQ(o.interval, 500ms);
  EXPECT_EQ(o.timeout, 100ms);
  EXPECT_EQ(o.rise, 1);
  EXPECT_EQ(o.fall, 5);
  EXPECT_FALSE(c.health_checks.count("plain"));

  ConfigErrors bad_errors;
  ConfigReader bad("p.yaml", bad_errors, testing::fakeEnv({}));
  auto bad_root = bad.loadString(R"(proxy:
  services:
    - {name: a, listen: "127.0.0.1:8080", blue: ["127.0.0.1:9001"], health_check: {path: "/x HTTP/1.1\r\nX-Evil: 1"}}
    - {name: b, listen: "127.0.0.1:8081", blue: ["127.0.0.1:9001"], health_check: {path: healthz, host: "a b"}}
    - {name: c, listen: "127.0.0.1:8082", blue: ["127.0.0.1:9001"], health_check: {interval: 1ms, timeout: 0s, rise: 0, fall: 101}}
    - {name: d, listen: "127.0.0.1:8083", blue: ["127.0.0.1:9001"], health_check: {paht: /healthz}}
)");
  auto bc = parseProxyConfig(bad, (*bad_root)["proxy"], "proxy");
  const std::string all = bad_errors.format();
  for (const char* want : {
           "p.yaml:3:",
           "proxy.services[0].health_check.path: expected a path such as \"/healthz\"",
           "proxy.services[1].health_check.path: expected a path",
           "proxy.services[1].health_check.host: expected a host name",
           "proxy.services[2].health_check.interval: expected 10ms to 1h",
           "proxy.services[2].health_check.timeout: expected 1ms to 1m",
           "proxy.services[2].health_check.rise: expected a whole number from 1 to 100",
           "proxy.services[2].health_check.fall: expected a whole number from 1 to 100",
           "proxy.services[3].health_check.paht: unknown key",
       }) {
    EXPECT_NE(all.find(want), std::string::npos) << "missing " << want << "\n" << all;
  }
  EXPECT_TRUE(bc.health_checks.empty()) << "a service with a bad check gets none rather than a guessed one";
}

TEST(ProxyConfig, AffinityAndMirrorAreReadAndWhatIsWrongIsNamed) {
  ConfigErrors errors;
  ConfigReader r("p.yaml", errors, testing::fakeEnv({}));
  auto root = r.loadString(R"(proxy:
  services:
    - {name: a, listen: "127.0.0.1:8080", blue: ["127.0.0.1:9001"], affinity: {header: X-Client-Id}}
    - {name: b, listen: "127.0.0.1:8081", blue: ["127.0.0.1:9001"], affinity: {cookie: session}}
    - {name: c, listen: "127.0.0.1:8082", blue: ["127.0.0.1:9001"], affinity: {client_address: true}}
    - {name: d, listen: "127.0.0.1:8083", blue: ["127.0.0.1:9001"], mirror: {percent: 15}}
)");
  auto c = parseProxyConfig(r, (*root)["proxy"], "proxy");
  ASSERT_TRUE(errors.empty()) << errors.format();
  EXPECT_EQ(c.routes.services.at("d").mirror, 15);
  EXPECT_EQ(c.routes.services.at("a").mirror, 0);
  EXPECT_EQ(c.routes.services.at("a").affinity, (Affinity{AffinityKey::kHeader, "x-client-id"}));
  EXPECT_EQ(c.routes.services.at("b").affinity, (Affinity{AffinityKey::kCookie, "session"}));
  EXPECT_EQ(c.routes.services.at("c").affinity.key, AffinityKey::kClientAddress);
  EXPECT_EQ(c.routes.services.at("d").affinity.key, AffinityKey::kNone);

  ConfigErrors bad_errors;
  ConfigReader bad("p.yaml", bad_errors, testing::fakeEnv({}));
  auto bad_root = bad.loadString(R"(proxy:
  services:
    - {name: a, listen: "127.0.0.1:8080", blue: ["127.0.0.1:9001"], affinity: {header: X-Client-Id, cookie: session}}
    - {name: b, listen: "127.0.0.1:8081", blue: ["127.0.0.1:9001"], affinity: {header: "X Client"}}
    - {name: c, listen: "127.0.0.1:8082", blue: ["127.0.0.1:9001"], affinity: {client_address: false}}
    - {name: d, listen: "127.0.0.1:8083", blue: ["127.0.0.1:9001"], affinity: {}}
    - {name: e, listen: "127.0.0.1:8084", blue: ["127.0.0.1:9001"], affinity: {heder: X-Client-Id}}
    - {name: f, listen: "127.0.0.1:8085", blue: ["127.0.0.1:9001"], affinity: {cookie: "s=1"}}
    - {name: g, listen: "127.0.0.1:8086", blue: ["127.0.0.1:9001"], mirror: {percent: 120}}
    - {name: h, listen: "127.0.0.1:8087", blue: ["127.0.0.1:9001"], mirror: 10}
)");
  (void)parseProxyConfig(bad, (*bad_root)["proxy"], "proxy");
  const std::string all = bad_errors.format();
  for (const char* want : {
           "p.yaml:3:",
           "proxy.services[0].affinity: expected exactly one of header, cookie or client_address: true",
           "proxy.services[1].affinity.header: expected a header name (letters, digits and",
           "got \"X Client\"",
           "proxy.services[2].affinity.client_address: expected true (leave affinity out for none), got false",
           "proxy.services[3].affinity: expected exactly one of",
           "proxy.services[4].affinity.heder: unknown key",
           "proxy.services[5].affinity.cookie: expected a cookie name",
           "proxy.services[6].mirror.percent: expected a whole number from 0 to 100",
           "proxy.services[7].mirror: expected a mapping of keys to values",
       }) {
    EXPECT_NE(all.find(want), std::string::npos) << "missing " << want << "\n" << all;
  }
}

TEST(Files, AtomicWriteReplacesWholeFiles) {
  testing::TempDir dir;
  const std::string f = dir.path() + "/state";
  ASSERT_TRUE(writeFileAtomic(f, "first").ok());
  ASSERT_TRUE(writeFileAtomic(f, "second").ok());
  EXPECT_EQ(*readWholeFile(f), "second");
  EXPECT_FALSE(writeFileAtomic(dir.path() + "/missing/state", "x").ok());
}

}  // namespace
}  // namespace greenlight::proxy
