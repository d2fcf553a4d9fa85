// The proxy's access log: what a line says and what it never says (query strings, identifiers,
// whole client addresses), the file's rotation, its bounded memory, and the lines a running
// proxy writes for relayed and refused requests.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../../proxy/src/access_log.h"
#include "greenlight/common/config_reader.h"
#include "greenlight/common/time_format.h"
#include "proxy_fixture.h"

namespace greenlight::proxy {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<nlohmann::json> jsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(readFile(path));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(AccessLogFormat, QueryStringsAndIdentifiersNeverReachTheLog) {
  EXPECT_EQ(redactPath("/v1/vehicles/WBA3A5C51CF256985/odometer?access_token=abc"), "/v1/vehicles/:id/odometer");
  EXPECT_EQ(redactPath("/v1/vehicles/123/location"), "/v1/vehicles/:id/location");
  EXPECT_EQ(redactPath("/users/3f2b8c1e-7d4a-4b9e-9c1f-2a6d8e0b5c7a/trips"), "/users/:id/trips");
  EXPECT_EQ(redactPath("/api/v2/oauth2/token"), "/api/v2/oauth2/token") << "short names with a digit stay";
  EXPECT_EQ(redactPath("/a/b#fragment"), "/a/b");
  EXPECT_EQ(redactPath("/"), "/");
  EXPECT_EQ(redactPath("*"), "*");
  EXPECT_EQ(redactPath("/trailing/"), "/trailing/");
}

TEST(AccessLogFormat, ClientAddressesAreTruncatedUnlessAskedOtherwise) {
  EXPECT_EQ(clientForLog("203.0.113.77", AccessLogClient::kTruncated), "203.0.113.0");
  EXPECT_EQ(clientForLog("2001:db8:1234:5678::1", AccessLogClient::kTruncated), "2001:db8:1234::");
  EXPECT_EQ(clientForLog("::ffff:203.0.113.77", AccessLogClient::kTruncated), "::ffff:203.0.113.0")
      << "an IPv4 client on a dual-stack listener keeps its /24, not nothing";
  EXPECT_EQ(clientForLog("203.0.113.77", AccessLogClient::kFull), "203.0.113.77");
  EXPECT_EQ(clientForLog("203.0.113.77", AccessLogClient::kNone), "");
  EXPECT_EQ(clientForLog("not an address", AccessLogClient::kTruncated), "");
}

TEST(AccessLogFormat, StringsAreValidJsonWhateverTheClientSent) {
  for (const std::string& raw : {std::string("/plain/path"), std::string("/a\"b\\c"), std::string("/tab\there\x01"),
                                std::string("/caf\xc3\xa9"), std::string("/bad\xff\xfeutf8")}) {
    std::string out;
    appendJsonString(out, raw);
    nlohmann::json parsed;
    ASSERT_NO_THROW(parsed = nlohmann::json::parse(out)) << out;
    ASSERT_TRUE(parsed.is_string()) << out;
    if (raw.find('\xff') == std::string::npos) {
      EXPECT_EQ(parsed.get<std::string>(), raw);
    } else {
      EXPECT_EQ(parsed.get<std::string>(), "/bad\xef\xbf\xbd\xef\xbf\xbdutf8") << "invalid bytes become U+FFFD";
    }
  }
}

TEST(AccessLogFormat, TimesAreUtcWithMilliseconds) {
  const WallTime t = WallTime{} + std::chrono::seconds(1795824000) + std::chrono::milliseconds(7);  // 2026-11-28T00:00:00Z
  std::string out;
  appendLogTime(out, t);
  EXPECT_EQ(out, "2026-11-28T00:00:00.007Z");
  out.clear();
  appendLogTime(out, t + std::chrono::milliseconds(61993));  // another second: formatted afresh
  EXPECT_EQ(out, "2026-11-28T00:01:02.000Z");
  EXPECT_EQ(parseRfc3339("2026-11-28T00:01:02Z"), t + std::chrono::milliseconds(61993));
}

TEST(AccessLogConfig, UnknownKeysAndBadValuesAreErrorsNamingTheField) {
  ConfigErrors errors;
  ConfigReader r("p.yaml", errors, testing::fakeEnv({}));
  auto root = r.loadString(R"(proxy:
  access_log: {path: /var/log/a.log, client: partial, format: json}
  services:
    - {name: vehicles, listen: "127.0.0.1:8080", blue: ["127.0.0.1:9001"]}
)");
  auto c = parseProxyConfig(r, (*root)["proxy"], "proxy");
  const std::string all = errors.format();
  EXPECT_THAT(all, ::testing::HasSubstr("proxy.access_log.format: unknown key"));
  EXPECT_THAT(all, ::testing::HasSubstr("proxy.access_log.client: expected truncated, full or none, got \"partial\""));

  ConfigErrors ok_errors;
  ConfigReader ok("p.yaml", ok_errors, testing::fakeEnv({}));
  auto good = ok.loadString(R"(proxy:
  access_log: {path: /var/log/a.log, client: none}
  services:
    - {name: vehicles, listen: "127.0.0.1:8080", blue: ["127.0.0.1:9001"]}
)");
  auto g = parseProxyConfig(ok, (*good)["proxy"], "proxy");
  EXPECT_TRUE(ok_errors.empty()) << ok_errors.format();
  EXPECT_EQ(g.access_log.path, "/var/log/a.log");
  EXPECT_EQ(g.access_log.client, AccessLogClient::kNone);
}

TEST(AccessLogFile, LinesAreAppendedAndAReopenStartsANewFileAfterARotation) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/access.log";
  auto log = AccessLog::open(path);
  ASSERT_TRUE(log.ok()) << log.status().message();
  (*log)->add("one");
  ASSERT_TRUE(testing::waitUntil([&] { return readFile(path) == "one\n"; }));
  ASSERT_EQ(std::rename(path.c_str(), (path + ".1").c_str()), 0);  // what logrotate does
  (*log)->add("two");  // still into the moved file: the writer holds it open
  ASSERT_TRUE(testing::waitUntil([&] { return readFile(path + ".1") == "one\ntwo\n"; }));
  ASSERT_TRUE((*log)->reopen().ok());
  (*log)->add("three");
  ASSERT_TRUE(testing::waitUntil([&] { return readFile(path) == "three\n"; }));
  EXPECT_EQ(readFile(path + ".1"), "one\ntwo\n");
  EXPECT_EQ((*log)->dropped(), 0u);
}

TEST(AccessLogFile, AnUnopenablePathIsAnErrorNamingIt) {
  auto log = AccessLog::open("/nonexistent-greenlight-dir/access.log");
  ASSERT_FALSE(log.ok());
  EXPECT_THAT(log.status().message(), ::testing::HasSubstr("/nonexistent-greenlight-dir/access.log"));
}

TEST(AccessLogFile, WhenTheDiskFallsBehindLinesAreDroppedAndCountedNotQueuedWithoutBound) {
  // A FIFO nobody reads stands in for a disk that stopped: the writer blocks once the pipe is full.
  testing::TempDir dir;
  const std::string path = dir.path() + "/access.fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const int reader = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  prometheus::Registry registry;
  auto& dropped = prometheus::BuildCounter().Name("dropped").Register(registry).Add({});
  {
    auto log = AccessLog::open(path, &dropped);
    ASSERT_TRUE(log.ok()) << log.status().message();
    const std::string line(1023, 'x');
    const size_t lines = 3 * AccessLog::kMaxBuffered / 1024;  // more than the buffer, the pipe and a write in progress hold
    for (size_t i = 0; i < lines; ++i) (*log)->add(line);
    const uint64_t lost = (*log)->dropped();
    EXPECT_GT(lost, 0u);
    EXPECT_LT(lost, lines);
    EXPECT_EQ(dropped.Value(), static_cast<double>(lost));
    // Everything not dropped arrives once the reader reads again (and the writer can stop).
    size_t newlines = 0;
    std::vector<char> buf(1 << 16);
    ASSERT_TRUE(testing::waitUntil([&] {
      for (ssize_t n; (n = ::read(reader, buf.data(), buf.size())) > 0;) newlines += std::count(buf.begin(), buf.begin() + n, '\n');
      return newlines == lines - lost;
    }));
  }
  ::close(reader);
}

TEST_F(ProxyTest, TheAccessLogHasALinePerRequestAndNoQueryStringIdentifierOrWholeAddress) {
  const std::string log = dir_.path() + "/access.log";
  start(blue_.address(), green_.address(), "  access_log: {path: " + log + "}\n");
  RawConnection c(port_);
  ASSERT_TRUE(c.send(get("/v1/vehicles/WBA3A5C51CF256985/odometer?access_token=s3cr3t")));
  EXPECT_EQ(c.read().body, "blue");
  RawConnection bad(port_);
  ASSERT_TRUE(bad.send("GE T /v1/x HTTP/1.1\r\nHost: v\r\n\r\n"));
  EXPECT_EQ(bad.read().status, 400);
  setWeights(0, 100);
  ASSERT_TRUE(c.send(get("/v1/health")));
  EXPECT_EQ(c.read().body, "green");
  ASSERT_TRUE(testing::waitUntil([&] { return jsonLines(log).size() == 3; })) << readFile(log);

  const std::string text = readFile(log);
  EXPECT_EQ(text.find("s3cr3t"), std::string::npos) << text;
  EXPECT_EQ(text.find("WBA3A5C51CF256985"), std::string::npos) << text;
  EXPECT_EQ(text.find("127.0.0.1\""), std::string::npos) << "the client address is truncated by default\n" << text;
  // Lines of different connections may land in either order: found by what they say.
  std::map<int, nlohmann::json> by_status;
  for (const auto& j : jsonLines(log)) {
    if (j["status"] == 200) by_status[j["path"] == "/v1/health" ? 2 : 1] = j; else by_status[j["status"].get<int>()] = j;
  }
  ASSERT_EQ(by_status.size(), 3u) << text;
  const auto& first = by_status[1];
  EXPECT_EQ(first["service"], "vehicles");
  EXPECT_EQ(first["client"], "127.0.0.0");
  EXPECT_EQ(first["method"], "GET");
  EXPECT_EQ(first["path"], "/v1/vehicles/:id/odometer");
  EXPECT_EQ(first["color"], "blue");
  EXPECT_EQ(first["endpoint"], blue_.address());
  EXPECT_EQ(first["tls"], false);
  EXPECT_GE(first["duration_ms"].get<double>(), 0.0);
  EXPECT_TRUE(parseRfc3339(first["time"].get<std::string>()).has_value()) << first["time"];
  const auto& refused = by_status[400];
  EXPECT_TRUE(refused["color"].is_null());
  EXPECT_TRUE(refused["endpoint"].is_null());
  const auto& second = by_status[2];
  EXPECT_EQ(second["color"], "green");
  EXPECT_EQ(second["endpoint"], green_.address());

  // logrotate moves the file, then reloads the proxy (SIGHUP): the next line starts a new file.
  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_TRUE(svc_->reload().ok());
  ASSERT_TRUE(c.send(get("/v1/health")));
  EXPECT_EQ(c.read().body, "green");
  ASSERT_TRUE(testing::waitUntil([&] { return jsonLines(log).size() == 1; })) << readFile(log);
  EXPECT_EQ(jsonLines(log + ".1").size(), 3u);
}

TEST_F(ProxyTest, WithRequestIdsEachLineCarriesTheIdTheClientWasSent) {
  const std::string log = dir_.path() + "/access.log";
  start(blue_.address(), green_.address(), "  access_log: {path: " + log + "}\n  request_id: {header: X-Request-Id}\n");
  RawConnection c(port_);
  ASSERT_TRUE(c.send(get("/v1/health")));
  const auto r = c.read();
  EXPECT_EQ(r.body, "blue");
  const size_t at = r.headers.find("\r\nX-Request-Id: ");
  ASSERT_NE(at, std::string::npos) << r.headers;
  const std::string id = r.headers.substr(at + 16, 36);
  ASSERT_TRUE(testing::waitUntil([&] { return jsonLines(log).size() == 1; })) << readFile(log);
  EXPECT_EQ(jsonLines(log)[0]["request_id"], id);
}

TEST_F(ProxyTest, ClientAddressesCanBeLeftOutAndAFailedEndpointIsNamed) {
  const std::string log = dir_.path() + "/access.log";
  const std::string dead = "127.0.0.1:" + std::to_string(testing::freePort());  // nobody listens
  start(dead, green_.address(), "  access_log: {path: " + log + ", client: none}\n");
  RawConnection c(port_);
  ASSERT_TRUE(c.send(get("/")));
  EXPECT_EQ(c.read().status, 502);
  ASSERT_TRUE(testing::waitUntil([&] { return jsonLines(log).size() == 1; })) << readFile(log);
  const auto line = jsonLines(log)[0];
  EXPECT_FALSE(line.contains("client")) << line;
  EXPECT_EQ(line["status"], 502);
  EXPECT_EQ(line["color"], "blue");
  EXPECT_EQ(line["endpoint"], dead);
}

TEST_F(ProxyTest, AnAccessLogPathThatCannotBeOpenedStopsTheStartOrRefusesTheReload) {
  const std::string missing = dir_.path() + "/no-such-dir/access.log";
  const std::string cfg = dir_.write("bad.yaml", "log: {level: warn}\nadmin: {listen: 127.0.0.1:0}\nproxy:\n"
                                                 "  access_log: {path: " + missing + "}\n"
                                                 "  services:\n    - {name: vehicles, listen: \"127.0.0.1:0\", blue: [" +
                                                 blue_.address() + "]}\n");
  auto bad = app::ProxyService::start(cfg, 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), ::testing::HasSubstr(missing));

  // Running, its directory goes: the reload is refused and lines go on into the open file.
  const std::string logs = dir_.path() + "/logs";
  ASSERT_EQ(::mkdir(logs.c_str(), 0700), 0);
  start(blue_.address(), green_.address(), "  access_log: {path: " + logs + "/access.log}\n");
  ASSERT_EQ(std::rename(logs.c_str(), (logs + ".old").c_str()), 0);
  const Status reloaded = svc_->reload();
  EXPECT_FALSE(reloaded.ok());
  EXPECT_THAT(reloaded.message(), ::testing::HasSubstr(logs + "/access.log"));
  RawConnection c(port_);
  ASSERT_TRUE(c.send(get("/")));
  EXPECT_EQ(c.read().body, "blue");
  ASSERT_TRUE(testing::waitUntil([&] { return jsonLines(logs + ".old/access.log").size() == 1; }));
}

}  // namespace
}  // namespace greenlight::proxy
