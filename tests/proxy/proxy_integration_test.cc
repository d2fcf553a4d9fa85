// The data plane over real sockets: backends started by the test, the proxy in front.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <thread>
#include <vector>

#include "proxy/proxy_fixture.h"

namespace greenlight::proxy {
namespace {

using namespace std::chrono_literals;
using testing::RawConnection;
using testing::TestBackend;

TEST_F(ProxyTest, WeightChangeAppliesToTheNextRequestOnTheSameConnection) {
  start(blue_.address(), green_.address());
  RawConnection c(port_);
  ASSERT_TRUE(c.send(get()));
  auto r1 = c.read();
  EXPECT_EQ(r1.status, 200);
  EXPECT_EQ(r1.body, "blue");
  setWeights(0, 100);
  ASSERT_TRUE(c.send(get()));  // same client connection, opened before the change
  auto r2 = c.read();
  EXPECT_EQ(r2.body, "green");
}

TEST_F(ProxyTest, ForwardingHeadersAreSetAndHopByHopOnesRemoved) {
  start(blue_.address(), green_.address());
  RawConnection c(port_);
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: v\r\nX-Forwarded-For: 10.1.2.3\r\nConnection: keep-alive, X-Secret-Hop\r\nX-Secret-Hop: 1\r\n\r\n"));
  auto r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("X-Seen-Forwarded-For: 10.1.2.3, 127.0.0.1"), std::string::npos) << r.headers;
  EXPECT_NE(r.headers.find("X-Seen-Via: 1.1 greenlight"), std::string::npos) << r.headers;
}

// A header's value in a raw head ("" when absent).
std::string headerValue(const std::string& head, const std::string& name) {
  const size_t at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  const size_t from = at + 4 + name.size();
  return head.substr(from, head.find("\r\n", from) - from);
}

bool isUuidV4(const std::string& s) {
  static const std::regex kUuid("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  return std::regex_match(s, kUuid);
}

// proxy.request_id: every request gets a new id, sent to the upstream and back to the client in
// place of whatever id the client or the upstream sent (an edge proxy does not take a client's
// word, and a client's value could carry an identifier into the access log).
TEST_F(ProxyTest, EachRequestGetsAnIdTheUpstreamAndTheClientBothSee) {
  const std::string dead = "127.0.0.1:" + std::to_string(testing::freePort());  // nobody listens
  start(blue_.address(), dead, "  request_id: {header: X-Request-Id}\n");
  RawConnection c(port_);
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: v\r\nX-Request-Id: WBA3A5C51CF256985\r\n\r\n"));
  const auto first = c.read();
  EXPECT_EQ(first.body, "blue");
  const std::string id = headerValue(first.headers, "X-Request-Id");
  EXPECT_TRUE(isUuidV4(id)) << first.headers;
  EXPECT_EQ(headerValue(first.headers, "X-Seen-Request-Id"), id) << "the upstream saw the same id";
  EXPECT_EQ(first.headers.find("WBA3A5C51CF256985"), std::string::npos) << first.headers;
  EXPECT_EQ(first.headers.find("blue-own"), std::string::npos) << first.headers;

  ASSERT_TRUE(c.send(get()));
  const auto second = c.read();
  EXPECT_TRUE(isUuidV4(headerValue(second.headers, "X-Request-Id"))) << second.headers;
  EXPECT_NE(headerValue(second.headers, "X-Request-Id"), id) << "one id per request, not per connection";

  // The proxy's own answers carry the id too: a client reporting a 502 can quote it.
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: v\r\nX-Greenlight-Color: green\r\n\r\n"));
  const auto failed = c.read();
  EXPECT_EQ(failed.status, 502);
  EXPECT_TRUE(isUuidV4(headerValue(failed.headers, "X-Request-Id"))) << failed.headers;
}

TEST_F(ProxyTest, WithoutRequestIdsHeadersPassAsTheyAre) {
  start(blue_.address(), green_.address());
  RawConnection c(port_);
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: v\r\nX-Request-Id: abc-123\r\n\r\n"));
  const auto r = c.read();
  EXPECT_EQ(headerValue(r.headers, "X-Seen-Request-Id"), "abc-123");
  EXPECT_EQ(headerValue(r.headers, "X-Request-Id"), "blue-own");
}

TEST_F(ProxyTest, AConnectionCloseRequestIsAnsweredAndThenTheConnectionEnds) {
  start(blue_.address(), green_.address());
  RawConnection c(port_);
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: v\r\nConnection: close\r\n\r\n"));
  auto r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "blue");
  EXPECT_NE(r.headers.find("Connection: close"), std::string::npos) << r.headers;
  EXPECT_TRUE(c.closedWithin(2s)) << "the answer is followed by the end of the stream";
}

// The answer's last segment waits in the kernel for the FIN (MSG_MORE) so that both leave in
// one packet. A client that sends more after `Connection: close` leaves unread bytes, and a close
// with unread bytes resets the connection, dropping whatever still waits: the answer must be out
// (with the FIN) before that.
TEST_F(ProxyTest, AClosingClientThatSendsMoreStillGetsItsWholeAnswer) {
  start(blue_.address(), green_.address());
  RawConnection c(port_);
  ASSERT_TRUE(c.send("GET /hold HTTP/1.1\r\nHost: v\r\nConnection: close\r\n\r\n"));
  // The backend has the request, so the proxy has read it; what follows stays unread.
  ASSERT_TRUE(testing::waitUntil([&] { return blue_.holding(); }));
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: v\r\n\r\n"));
  blue_.release();
  auto r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "blue-held");
  EXPECT_TRUE(c.closedWithin(2s));
}

TEST_F(ProxyTest, PreviewHeaderOrCookieReachesTheIdleColour) {
  start(blue_.address(), green_.address());
  RawConnection c(port_);
  c.send("GET / HTTP/1.1\r\nHost: v\r\nX-Greenlight-Color: green\r\n\r\n");
  EXPECT_EQ(c.read().body, "green");
  c.send("GET / HTTP/1.1\r\nHost: v\r\nCookie: a=1; greenlight-color=green\r\n\r\n");
  EXPECT_EQ(c.read().body, "green");
  c.send(get());
  EXPECT_EQ(c.read().body, "blue");
}

// The colour each of `clients` affinity keys reached, sending `rounds` requests each, the
// clients' requests interleaved on one keep-alive connection. Fails the test if one client's
// requests reached both colours.
std::map<std::string, std::string> colourPerClient(int port, int clients, int rounds, const std::string& extra_header = "") {
  std::map<std::string, std::string> colour;
  RawConnection c(port);
  for (int round = 0; round < rounds; ++round) {
    for (int i = 0; i < clients; ++i) {
      const std::string id = "app-" + std::to_string(i);
      c.send("GET / HTTP/1.1\r\nHost: v\r\nX-Client-Id: " + id + "\r\n" + extra_header + "\r\n");
      const std::string got = c.read().body;
      auto [at, fresh] = colour.emplace(id, got);
      EXPECT_TRUE(fresh || at->second == got) << id << " reached " << at->second << ", then " << got;
    }
  }
  return colour;
}

int countOf(const std::map<std::string, std::string>& colour, const std::string& which) {
  return static_cast<int>(std::count_if(colour.begin(), colour.end(), [&](const auto& kv) { return kv.second == which; }));
}

TEST_F(ProxyTest, WithAffinityEachClientStaysOnOneColourAndClientsOnTheGrowingColourStay) {
  start(blue_.address(), green_.address(), "", "{blue: 50, green: 50}", "      affinity: {header: X-Client-Id}\n");
  const auto at_half = colourPerClient(port_, 60, 4);
  EXPECT_GT(countOf(at_half, "blue"), 10);
  EXPECT_GT(countOf(at_half, "green"), 10);

  setWeights(20, 80);
  const auto at_80 = colourPerClient(port_, 60, 2);
  for (const auto& [id, colour] : at_half) {
    if (colour == "green") {
      EXPECT_EQ(at_80.at(id), "green") << id << " went back to blue as green grew";
    }
  }
  EXPECT_GT(countOf(at_80, "green"), countOf(at_half, "green"));

  // The preview header still wins, and requests without the key are split per request.
  const auto previewed = colourPerClient(port_, 60, 1, "X-Greenlight-Color: blue\r\n");
  EXPECT_EQ(countOf(previewed, "blue"), 60);
  RawConnection anonymous(port_);
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    anonymous.send(get());
    seen.insert(anonymous.read().body);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"blue", "green"}));

  // A full switch moves every client: affinity never holds a colour that has no weight.
  setWeights(0, 100);
  EXPECT_EQ(countOf(colourPerClient(port_, 60, 1), "green"), 60);
}

TEST_F(ProxyTest, AffinityByCookieOrClientAddressKeepsThatKeyOnOneColour) {
  start(blue_.address(), green_.address(), "", "{blue: 50, green: 50}", "      affinity: {cookie: session}\n");
  // Eight sessions, ten requests each on fresh connections: each session sees one colour.
  std::set<std::string> colours;
  for (int session = 0; session < 8; ++session) {
    std::set<std::string> seen;
    for (int i = 0; i < 10; ++i) {
      RawConnection c(port_);
      c.send("GET / HTTP/1.1\r\nHost: v\r\nCookie: theme=dark; session=s" + std::to_string(session) + "\r\n\r\n");
      seen.insert(c.read().body);
    }
    EXPECT_EQ(seen.size(), 1u) << "session s" << session;
    colours.insert(seen.begin(), seen.end());
  }
  EXPECT_EQ(colours.size(), 2u) << "eight sessions at 50/50 all on one colour: the key is not spread";
  svc_.reset();

  start(blue_.address(), green_.address(), "", "{blue: 50, green: 50}", "      affinity: {client_address: true}\n");
  std::set<std::string> from_here;  // every test client is 127.0.0.1
  for (int i = 0; i < 40; ++i) {
    RawConnection c(port_);
    c.send(get());
    from_here.insert(c.read().body);
  }
  EXPECT_EQ(from_here.size(), 1u);
}

TEST_F(ProxyTest, NoFailedRequestWhileWeightsFlipUnderConcurrentKeepAliveLoad) {
  start(blue_.address(), green_.address());
  KeepAliveLoad load(port_, 8);
  auto& ok = load.ok;
  auto& failed = load.failed;
  // 200 flips, each one only after at least 10 more requests went through: weights change under
  // load, never in a quiet moment.
  for (int flip = 0; flip < 200; ++flip) {
    const int before = ok;
    setWeights(flip % 2 ? 100 : 0, flip % 2 ? 0 : 100);
    ASSERT_TRUE(testing::waitUntil([&] { return ok >= before + 10 || failed > 0; }));
  }
  load.stop();
  EXPECT_EQ(failed, 0);
  EXPECT_GT(ok, 2000);
}

TEST_F(ProxyTest, ObservedSplitMatchesTheWeights) {
  start(blue_.address(), green_.address(), "", "{blue: 70, green: 30}");
  httplib::Client cli("127.0.0.1", port_);
  cli.set_keep_alive(true);
  int green = 0;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    auto res = cli.Get("/");
    ASSERT_TRUE(res);
    green += res->body == "green";
  }
  EXPECT_NEAR(green / double(n), 0.30, 0.05);
}

TEST_F(ProxyTest, SlowRequestToBlueCompletesAfterASwitchAndTheNextGoesGreen) {
  start(blue_.address(), green_.address());
  RawConnection c(port_);
  ASSERT_TRUE(c.send(get("/hold")));
  ASSERT_TRUE(testing::waitUntil([&] { return blue_.holding(); }));
  setWeights(0, 100);
  blue_.release();
  auto slow = c.read();
  EXPECT_EQ(slow.status, 200);
  EXPECT_EQ(slow.body, "blue-held");
  ASSERT_TRUE(c.send(get()));
  EXPECT_EQ(c.read().body, "green");
}

// The deadlines: an upstream that never answers costs the client a 504 once the request
// timeout has passed (not a hang), and a keep-alive connection left idle is closed.
TEST_F(ProxyTest, AnUpstreamThatNeverAnswersGivesA504AndAnIdleClientIsClosed) {
  start(blue_.address(), green_.address(), "  timeouts: {request: 300ms, idle: 400ms}\n");
  RawConnection c(port_);
  ASSERT_TRUE(c.send(get("/hold")));
  ASSERT_TRUE(testing::waitUntil([&] { return blue_.holding(); }));
  const auto r = c.read(5s);
  EXPECT_EQ(r.status, 504) << r.headers;
  blue_.release();
  // A request that is answered in time keeps its connection, until it idles past 400 ms.
  RawConnection d(port_);
  ASSERT_TRUE(d.send(get()));
  EXPECT_EQ(d.read().body, "blue");
  ASSERT_TRUE(d.send(get()));
  EXPECT_EQ(d.read().body, "blue");
  EXPECT_TRUE(d.closedWithin(5s));
}

TEST_F(ProxyTest, DeadEndpointIsRetriedOnAnotherSoClientsSeeNoError) {
  const std::string dead = "127.0.0.1:" + std::to_string(testing::freePort());
  start(dead + ", " + blue_.address(), green_.address());
  httplib::Client cli("127.0.0.1", port_);
  for (int i = 0; i < 50; ++i) {
    auto res = cli.Get("/");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
  }
  auto stats = testing::httpGet(svc_->adminPort(), "/api/v1/stats").body;
  EXPECT_NE(stats.find("\"retries\":"), std::string::npos);
  EXPECT_EQ(stats.find("\"retries\":0"), std::string::npos) << stats;
}

TEST_F(ProxyTest, NothingToServeGivesAShort502) {
  const std::string dead = "127.0.0.1:" + std::to_string(testing::freePort());
  start(dead, green_.address());
  RawConnection c(port_);
  c.send(get());
  auto r = c.read();
  EXPECT_EQ(r.status, 502);
  EXPECT_LT(r.body.size(), 200u);
  EXPECT_NE(r.body.find("Bad Gateway"), std::string::npos) << r.body;
}

struct Hostile {
  const char* name;
  std::string bytes;
  int status;
};

TEST_F(ProxyTest, MalformedAndHostileRequestsGetA4xxAndTheProxyKeepsServing) {
  start(blue_.address(), green_.address(), "  timeouts: {header: 300ms}\n");
  const Hostile cases[] = {
      {"content-length with transfer-encoding",
       "POST / HTTP/1.1\r\nHost: v\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"two different content-lengths", "POST / HTTP/1.1\r\nHost: v\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: v\r\nX-A: a\r\n b\r\n\r\n", 400},
      {"bad chunk size", "POST / HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400},
      {"invalid request line", "HELLO\r\n\r\n", 400},
      {"space in method", "GE T / HTTP/1.1\r\nHost: v\r\n\r\n", 400},
      {"huge header", "GET / HTTP/1.1\r\nHost: v\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n", 431},
  };
  for (const auto& h : cases) {
    RawConnection c(port_);
    ASSERT_TRUE(c.send(h.bytes)) << h.name;
    auto r = c.read();
    EXPECT_EQ(r.status, h.status) << h.name << "\n" << r.headers << r.body;
    EXPECT_TRUE(c.closedWithin(2s)) << h.name << ": the connection closes after a bad request";
  }
  // Slowloris: headers that never end are cut off by the header timeout.
  RawConnection slow(port_);
  slow.send("GET / HTTP/1.1\r\nHost: v\r\nX-Slow: ");
  EXPECT_TRUE(slow.closedWithin(3s));
  EXPECT_EQ(blue_.requests(), 0) << "nothing hostile reached a backend";
  RawConnection good(port_);
  good.send(get());
  EXPECT_EQ(good.read().body, "blue");
}

TEST_F(ProxyTest, PostBodiesArePassedThrough) {
  start(blue_.address(), green_.address());
  RawConnection c(port_);
  c.send("POST /x HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  auto r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "blue:hello world");
}

TEST(ProxyProcess, ASwitchSurvivesSigkillAndTheFirstRequestAfterRestartGoesGreen) {
  testing::TempDir dir;
  TestBackend blue("blue"), green("green");
  const int port = testing::freePort(), admin = testing::freePort();
  const std::string socket = dir.path() + "/proxy.sock";
  const std::string cfg = dir.write("proxy.yaml",
      "admin: {listen: 127.0.0.1:" + std::to_string(admin) + "}\nproxy:\n"
      "  state_file: " + dir.path() + "/routes.json\n  runtime_api: {socket: " + socket + "}\n"
      "  services:\n    - {name: vehicles, listen: 127.0.0.1:" + std::to_string(port) +
      ", blue: [" + blue.address() + "], green: [" + green.address() + "]}\n");
  auto proxy = std::make_unique<testing::ChildProcess>(std::vector<std::string>{GREENLIGHT_BINARY, "proxy", "--config", cfg},
                                                       dir.path() + "/log1.txt");
  ASSERT_TRUE(testing::waitUntil([&] { return testing::httpGet(admin, "/readyz").status == 200; }))
      << testing::readFile(dir.path() + "/log1.txt");
  EXPECT_EQ(testing::httpGet(port, "/").body, "blue");
  // The runtime API on its Unix socket, as an operator's script would use it.
  testing::ChildProcess cmd({"sh", "-c", "printf 'set weight vehicles blue 0 green 100\\n' | python3 -c \""
                             "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect('" + socket + "'); "
                             "s.sendall(sys.stdin.buffer.read()); print(s.recv(4096).decode())\""},
                            dir.path() + "/cmd.txt");
  ASSERT_EQ(cmd.wait(10s), 0) << testing::readFile(dir.path() + "/cmd.txt");
  EXPECT_NE(testing::readFile(dir.path() + "/cmd.txt").find("ok weights vehicles blue 100->0 green 0->100"), std::string::npos);
  EXPECT_EQ(testing::httpGet(port, "/").body, "green");
  proxy->signal(SIGKILL);
  proxy->wait(5s);
  proxy = std::make_unique<testing::ChildProcess>(std::vector<std::string>{GREENLIGHT_BINARY, "proxy", "--config", cfg},
                                                  dir.path() + "/log2.txt");
  ASSERT_TRUE(testing::waitUntil([&] { return testing::httpGet(admin, "/readyz").status == 200; }))
      << testing::readFile(dir.path() + "/log2.txt");
  EXPECT_EQ(testing::httpGet(port, "/").body, "green") << "a restarted proxy never falls back to a stale colour";
  EXPECT_NE(testing::readFile(dir.path() + "/log2.txt").find("routing table restored"), std::string::npos);
  proxy->signal(SIGTERM);
  EXPECT_EQ(proxy->wait(15s), 0);
}

}  // namespace
}  // namespace greenlight::proxy

namespace greenlight::proxy {
namespace {

TEST_F(ProxyTest, ExpectContinueIsAnsweredBeforeTheBodyIsSent) {
  start(blue_.address(), green_.address());
  RawConnection c(port_);
  ASSERT_TRUE(c.send("POST /x HTTP/1.1\r\nHost: v\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = c.read(2s);
  EXPECT_EQ(interim.status, 100) << "the go-ahead comes before the client sends its body";
  ASSERT_TRUE(c.send("hello"));
  auto r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "blue:hello");
  RawConnection odd(port_);
  odd.send("POST /x HTTP/1.1\r\nHost: v\r\nContent-Length: 5\r\nExpect: teapot\r\n\r\nhello");
  EXPECT_EQ(odd.read().status, 417);
}

TEST_F(ProxyTest, StopLetsTheRequestInFlightFinishAndClosesIdleConnections) {
  start(blue_.address(), green_.address());
  RawConnection idle(port_);
  idle.send(get());
  EXPECT_EQ(idle.read().body, "blue");
  RawConnection busy(port_);
  busy.send(get("/hold"));
  ASSERT_TRUE(testing::waitUntil([&] { return blue_.holding(); }));
  std::thread stopper([&] { svc_->stop(10s); });
  EXPECT_TRUE(idle.closedWithin(5s)) << "an idle keep-alive connection is closed at once";
  blue_.release();
  auto r = busy.read();
  EXPECT_EQ(r.status, 200) << "the request in flight completes";
  EXPECT_EQ(r.body, "blue-held");
  EXPECT_NE(r.headers.find("Connection: close"), std::string::npos) << r.headers;
  stopper.join();
  RawConnection after(port_);
  EXPECT_FALSE(after.send(get()) && after.read(1s).status == 200) << "no longer accepting";
}

// A stopped proxy closes the connections it kept open to its upstreams at once, not when it is
// destroyed: an upstream that waits for its kept-alive connections to end before it stops (the
// demo's simulator) otherwise waited out its keep-alive timeout (5 s) on every stop.
TEST_F(ProxyTest, StopClosesTheIdleUpstreamConnections) {
  // The upstream: answers one request on a kept-alive connection, then waits for its end.
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::atomic<bool> answered{false}, closed{false};
  std::thread upstream([&] {
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    std::string in;
    char buf[4096];
    while (in.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
    }
    const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    answered = ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(answer.size());
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) == 1) closed = ::recv(fd, buf, sizeof buf, 0) == 0;  // the proxy's FIN
    ::close(fd);
  });
  start("127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), green_.address());
  RawConnection client(port_);
  client.send(get());
  const auto r = client.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
  svc_->stop(5s);  // the proxy object lives on until the test's end
  upstream.join();
  ::close(listener);
  EXPECT_TRUE(answered);
  EXPECT_TRUE(closed) << "the pooled upstream connection was still open 10 s after the stop";
}

}  // namespace
}  // namespace greenlight::proxy

namespace greenlight::proxy {
namespace {

TEST_F(ProxyTest, AnEndpointThatKeepsFailingIsEjected) {
  TestBackend broken("broken");
  broken.failWith(500);
  start(blue_.address() + ", " + broken.address(), green_.address(),
        "  passive_health: {failures: 3, ejection: 60s}\n");
  httplib::Client cli("127.0.0.1", port_);
  int errors = 0;
  for (int i = 0; i < 40; ++i) {
    auto res = cli.Get("/");
    ASSERT_TRUE(res);
    errors += res->status == 500;
  }
  EXPECT_EQ(errors, 3) << "three 500s in a row, then the endpoint gets no more requests";
  EXPECT_EQ(broken.requests(), 3);
  auto metrics = testing::httpGet(svc_->adminPort(), "/metrics").body;
  EXPECT_NE(metrics.find("greenlight_proxy_endpoint_ejections_total{color=\"blue\",endpoint=\"" + broken.address() +
                         "\",service=\"vehicles\"} 1"), std::string::npos) << metrics;
  svc_.reset();  // its pooled connection closed before `broken` stops (which would wait 5 s for it)
}


TEST_F(ProxyTest, ADeadEndpointStopsCostingRetriesOnceEjected) {
  const std::string dead = "127.0.0.1:" + std::to_string(testing::freePort());
  start(dead + ", " + blue_.address(), green_.address(), "  passive_health: {failures: 2, ejection: 60s}\n");
  httplib::Client cli("127.0.0.1", port_);
  for (int i = 0; i < 40; ++i) {
    auto res = cli.Get("/");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
  }
  auto stats = testing::httpGet(svc_->adminPort(), "/api/v1/stats").body;
  EXPECT_NE(stats.find("\"retries\":2"), std::string::npos) << stats;
}

}  // namespace
}  // namespace greenlight::proxy

namespace greenlight::proxy {
namespace {

TEST_F(ProxyTest, AnUpstreamKilledUnderLoadCostsNoClientErrors) {
  TestBackend second("blue2");
  start(blue_.address() + ", " + second.address(), green_.address(),
        "  passive_health: {failures: 1, ejection: 60s}\n");
  KeepAliveLoad load(port_, 4);
  auto& ok = load.ok;
  auto& failed = load.failed;
  ASSERT_TRUE(testing::waitUntil([&] { return ok > 300; }));
  second.stop();  // killed while requests flow; its pooled connections go stale
  const int at_kill = ok;
  ASSERT_TRUE(testing::waitUntil([&] { return ok > at_kill + 600 || failed > 0; }));
  load.stop();
  EXPECT_EQ(failed, 0);
}

}  // namespace

int threadConnections(int admin_port, int thread) {
  return metricValue(admin_port, "greenlight_proxy_thread_connections{thread=\"" + std::to_string(thread) + "\"}");
}

// defer_accept (on by default): a connection is accepted once its first bytes arrive. One event
// loop, so connections are accepted in the order they came: the silent one, queued before the
// one that sends a request, would be taken first.
TEST_F(ProxyTest, ASilentConnectionIsAcceptedOnlyOnceItsFirstBytesArrive) {
  start(blue_.address(), green_.address(), "  threads: 1\n");
  RawConnection silent(port_);
  RawConnection talking(port_);
  ASSERT_TRUE(talking.send(get()));
  EXPECT_EQ(talking.read().body, "blue");
  EXPECT_EQ(activeConnections(svc_->adminPort()), 1) << "only the connection that sent a request";
  ASSERT_TRUE(silent.send("GET / HTTP/1.1\r\n"));  // half a head: accepted, then waits for the rest
  EXPECT_TRUE(testing::waitUntil([&] { return activeConnections(svc_->adminPort()) == 2; }, 5s));
  ASSERT_TRUE(silent.send("Host: v\r\n\r\n"));
  EXPECT_EQ(silent.read().body, "blue");
}

TEST_F(ProxyTest, WithoutDeferAcceptASilentConnectionIsAcceptedAtOnce) {
  start(blue_.address(), green_.address(), "  threads: 1\n  defer_accept: false\n");
  RawConnection silent(port_);
  // Under 1 s: with defer on, the kernel would hand a silent connection over only after about a
  // second (its first SYN-ACK retransmission), which a longer wait could not tell apart.
  EXPECT_TRUE(testing::waitUntil([&] { return activeConnections(svc_->adminPort()) == 1; }, 700ms));
}

// Every event loop accepts, and whichever wakes first takes the connection; the loops still end
// up holding shares that differ by at most the slack (2). Accepted one at a time here, so
// each count is read after the previous connection has settled on its loop.
TEST_F(ProxyTest, ConnectionsAreSpreadOverTheEventLoops) {
  start(blue_.address(), green_.address(), "  threads: 2\n  defer_accept: false\n");
  std::vector<std::unique_ptr<RawConnection>> clients;
  for (int k = 1; k <= 12; ++k) {
    clients.push_back(std::make_unique<RawConnection>(port_));
    ASSERT_TRUE(testing::waitUntil([&] { return activeConnections(svc_->adminPort()) == k; }, 5s)) << k;
  }
  const int first = threadConnections(svc_->adminPort(), 0), second = threadConnections(svc_->adminPort(), 1);
  EXPECT_EQ(first + second, 12);
  EXPECT_LE(std::abs(first - second), 2) << first << " and " << second;
  for (auto& c : clients) {  // each still served, by the loop it was given to
    ASSERT_TRUE(c->send(get()));
    EXPECT_EQ(c->read().body, "blue");
  }
  clients.clear();
  EXPECT_TRUE(testing::waitUntil([&] {
    return threadConnections(svc_->adminPort(), 0) == 0 && threadConnections(svc_->adminPort(), 1) == 0;
  }, 5s)) << "each loop's count given back as its connections close";
}

// As HAProxy's nbthread: without `threads` in the config, one event loop per processor.
TEST_F(ProxyTest, WithoutAThreadCountTheProxyRunsOneEventLoopPerProcessor) {
  start(blue_.address(), green_.address());
  // hardware_concurrency may say 0 (unknown): the proxy then runs one loop.
  const int processors = std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 64);
  EXPECT_EQ(threadConnections(svc_->adminPort(), processors - 1), 0) << "the last loop's series";
  EXPECT_EQ(threadConnections(svc_->adminPort(), processors), -1) << "no loop beyond";
}

// max_connections, as HAProxy's maxconn: at the limit no event loop accepts, so a new connection
// waits in the kernel's listen queue — neither refused nor answered — until another closes.
TEST_F(ProxyTest, AtMaxConnectionsANewConnectionWaitsInTheQueueUntilAnotherCloses) {
  start(blue_.address(), green_.address(), "  threads: 2\n  max_connections: 2\n");
  const int admin = svc_->adminPort();
  EXPECT_EQ(metricValue(admin, "greenlight_proxy_max_connections"), 2);
  auto first = std::make_unique<RawConnection>(port_);
  RawConnection second(port_);
  for (RawConnection* c : {first.get(), &second}) {
    ASSERT_TRUE(c->send(get()));
    EXPECT_EQ(c->read().body, "blue");
  }
  RawConnection third(port_);  // connected: the kernel completed the handshake and queued it
  ASSERT_TRUE(third.send(get()));
  // Both accept loops stopped at the limit: the one that accepted the second connection, and the
  // other once the third's request made the listener readable.
  ASSERT_TRUE(testing::waitUntil([&] { return metricValue(admin, "greenlight_proxy_connection_limit_waits_total") == 2; }, 5s))
      << metricValue(admin, "greenlight_proxy_connection_limit_waits_total");
  EXPECT_EQ(activeConnections(admin), 2);
  EXPECT_TRUE(third.read(200ms).headers.empty()) << "answered past the limit";
  ASSERT_TRUE(second.send(get()));  // the connections held are served as before
  EXPECT_EQ(second.read().body, "blue");

  first.reset();  // a connection closes: the third is accepted and answered
  EXPECT_EQ(third.read().body, "blue");
  EXPECT_EQ(activeConnections(admin), 2);
}

// Without max_connections, the limit follows the open-file limit: half of what it leaves after a
// reserve, as each client connection may hold one to an upstream.
TEST_F(ProxyTest, WithoutMaxConnectionsTheLimitFollowsTheOpenFileLimit) {
  start(blue_.address(), green_.address());
  rlimit files{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &files), 0);
  const int expected = defaultMaxConnections();
  EXPECT_EQ(metricValue(svc_->adminPort(), "greenlight_proxy_max_connections"), expected);
  EXPECT_EQ(expected, static_cast<int>((std::min<rlim_t>(files.rlim_cur, rlim_t{1} << 21) - 100) / 2));
}

// A keep-alive client between two requests (an app between API calls: most of its connection's
// life) holds no request buffer: only connections with a request in progress do, and each loop
// keeps a few spare. Without that, each idle connection held 24 KiB (bench: 14 KiB resident).
TEST_F(ProxyTest, AKeepAliveConnectionWaitingForItsNextRequestHoldsNoBuffer) {
  start(blue_.address(), green_.address(), "  threads: 2\n");
  const int admin = svc_->adminPort();
  std::vector<std::unique_ptr<RawConnection>> clients;
  for (int k = 0; k < 100; ++k) {
    clients.push_back(std::make_unique<RawConnection>(port_));
    ASSERT_TRUE(clients.back()->send(get()));
    ASSERT_EQ(clients.back()->read().body, "blue") << k;
  }
  ASSERT_EQ(activeConnections(admin), 100);
  // One request at a time: a buffer per loop at most, whatever the connections held.
  EXPECT_TRUE(testing::waitUntil([&] { return connectionBuffers(admin) <= 2; }, 5s))
      << connectionBuffers(admin);
  // Each connection is served again after its wait, also two requests sent at once (the second
  // already buffered when the first is answered).
  for (auto& c : clients) {
    ASSERT_TRUE(c->send(get() + get()));
    EXPECT_EQ(c->read().body, "blue");
    EXPECT_EQ(c->read().body, "blue");
  }
  EXPECT_TRUE(testing::waitUntil([&] { return connectionBuffers(admin) <= 2; }, 5s))
      << connectionBuffers(admin);
  EXPECT_EQ(activeConnections(admin), 100);
}

// A burst of requests leaves each loop with spare buffers (up to 64 of 24 KiB); the ones no
// request needs for spare_buffer_release are freed, and the proxy serves on as before. Without
// that, the 30 buffers of this burst stayed with the proxy for good.
TEST_F(ProxyTest, TheBuffersABurstLeftAreFreedOnceNoRequestNeedsThem) {
  start(blue_.address(), green_.address(), "  threads: 1\n  spare_buffer_release: 200ms\n");
  const int admin = svc_->adminPort();
  std::vector<std::unique_ptr<RawConnection>> clients;
  for (int k = 0; k < 30; ++k) {
    clients.push_back(std::make_unique<RawConnection>(port_));
    ASSERT_TRUE(clients.back()->send("POST / HTTP/1.1\r\nHost: vehicles\r\nContent-Length: 4\r\n\r\n"));
  }
  // 30 requests in progress at once, each waiting for its body: a buffer each.
  ASSERT_TRUE(testing::waitUntil([&] { return connectionBuffers(admin) == 30; }, 5s))
      << connectionBuffers(admin);
  for (auto& c : clients) {
    ASSERT_TRUE(c->send("data"));
    EXPECT_EQ(c->read().body, "blue:data");  // the backend echoes the body
  }
  // The burst is over: its buffers went spare, and none is needed while the clients wait.
  EXPECT_TRUE(testing::waitUntil([&] { return connectionBuffers(admin) == 0; }, 5s))
      << connectionBuffers(admin);
  for (auto& c : clients) {
    ASSERT_TRUE(c->send(get()));
    EXPECT_EQ(c->read().body, "blue");
  }
  EXPECT_EQ(activeConnections(admin), 30);
}

}  // namespace greenlight::proxy

namespace greenlight::proxy {
namespace {

// One endpoint of the service as `show stats` lists it (null when it is not listed).
nlohmann::json endpointIn(int admin_port, const char* color, const std::string& address) {
  const auto stats = nlohmann::json::parse(testing::httpGet(admin_port, "/api/v1/stats").body);
  for (const auto& e : stats["vehicles"][color]["endpoints"]) {
    if (e["address"] == address) return e;
  }
  return nullptr;
}

nlohmann::json blueEndpoint(int admin_port, const std::string& address) { return endpointIn(admin_port, "blue", address); }

TEST_F(ProxyTest, AnEjectionShowsInStatsAndMetricsUntilItEndsAndTheEndpointServesAgain) {
  TestBackend broken("broken");
  broken.failWith(500);
  start(blue_.address() + ", " + broken.address(), green_.address(),
        "  passive_health: {failures: 2, ejection: 1s}\n");
  const std::string gauge = "greenlight_proxy_endpoint_ejected{color=\"blue\",endpoint=\"" + broken.address() +
                            "\",service=\"vehicles\"}";
  EXPECT_EQ(metricValue(svc_->adminPort(), gauge), 0);
  nlohmann::json ep = blueEndpoint(svc_->adminPort(), broken.address());
  ASSERT_FALSE(ep.is_null());
  EXPECT_EQ(ep["state"], "ready");
  EXPECT_EQ(ep["ejected"], false);
  httplib::Client cli("127.0.0.1", port_);
  for (int i = 0; i < 40 && broken.requests() < 2; ++i) ASSERT_TRUE(cli.Get("/"));  // endpoints in turn
  ASSERT_EQ(broken.requests(), 2);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(cli.Get("/"));
  EXPECT_EQ(broken.requests(), 2) << "ejected: no more requests";
  EXPECT_EQ(metricValue(svc_->adminPort(), gauge), 1);
  ep = blueEndpoint(svc_->adminPort(), broken.address());
  EXPECT_EQ(ep["ejected"], true) << ep;
  EXPECT_EQ(ep["ejected_seconds_left"], 1) << ep;
  EXPECT_EQ(ep["ejections"], 1);
  EXPECT_EQ(ep["requests"], 2);
  EXPECT_EQ(blueEndpoint(svc_->adminPort(), blue_.address())["ejected"], false);

  // The ejection ends: the gauge and the stats say so without any request, and the endpoint
  // (mended meanwhile) gets requests again.
  broken.failWith(0);
  ASSERT_TRUE(testing::waitUntil([&] { return metricValue(svc_->adminPort(), gauge) == 0; }, 5s));
  ep = blueEndpoint(svc_->adminPort(), broken.address());
  EXPECT_EQ(ep["ejected"], false) << ep;
  EXPECT_EQ(ep["ejected_seconds_left"], 0) << ep;
  for (int i = 0; i < 40 && broken.requests() < 4; ++i) {
    auto res = cli.Get("/");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
  }
  EXPECT_EQ(broken.requests(), 4) << "back in rotation";
  svc_.reset();  // as above: before `broken` stops
}

}  // namespace
}  // namespace greenlight::proxy

namespace greenlight::proxy {
namespace {

TEST_F(ProxyTest, AnAddressInBothColoursCountsEachColoursRequestsInItsOwnSeries) {
  // One backend listed as blue and as green (a release deployed in place): each colour's requests
  // are its own, in the metrics and in show stats.
  start(blue_.address(), blue_.address(), "", "{blue: 50, green: 50}");
  httplib::Client cli("127.0.0.1", port_);
  for (int i = 0; i < 40; ++i) {
    auto res = cli.Get("/");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
  }
  auto series = [&](const char* color) {
    return metricValue(svc_->adminPort(), std::string("greenlight_proxy_endpoint_requests_total{color=\"") + color +
                                              "\",endpoint=\"" + blue_.address() + "\",service=\"vehicles\"}");
  };
  auto by_class = [&](const char* color) {
    return metricValue(svc_->adminPort(), std::string("greenlight_proxy_requests_total{code=\"2xx\",color=\"") + color +
                                              "\",service=\"vehicles\"}");
  };
  EXPECT_EQ(series("blue"), by_class("blue"));
  EXPECT_EQ(series("green"), by_class("green"));
  EXPECT_GT(series("blue"), 0);
  EXPECT_GT(series("green"), 0);
  EXPECT_EQ(series("blue") + series("green"), 40);
  const auto stats = nlohmann::json::parse(testing::httpGet(svc_->adminPort(), "/api/v1/stats").body);
  EXPECT_EQ(stats["vehicles"]["blue"]["endpoints"][0]["requests"], series("blue")) << stats;
  EXPECT_EQ(stats["vehicles"]["green"]["endpoints"][0]["requests"], series("green")) << stats;
}

}  // namespace
}  // namespace greenlight::proxy

namespace greenlight::proxy {
namespace {

std::string healthySeries(const char* color, const std::string& address) {
  return std::string("greenlight_proxy_endpoint_healthy{color=\"") + color + "\",endpoint=\"" + address +
         "\",service=\"vehicles\"}";
}

TEST_F(ProxyTest, AFailingHealthCheckTakesAnEndpointOutBeforeAnyRequestReachesIt) {
  TestBackend sick("sick");
  sick.healthWith(503);
  start(blue_.address() + ", " + sick.address(), green_.address(), "", "{blue: 100, green: 0}",
        "      health_check: {path: /healthz, interval: 20ms, timeout: 1s, fall: 2, rise: 2}\n");
  const int admin = svc_->adminPort();
  ASSERT_TRUE(testing::waitUntil([&] { return metricValue(admin, healthySeries("blue", sick.address())) == 0; }, 5s));
  nlohmann::json ep = endpointIn(admin, "blue", sick.address());
  EXPECT_EQ(ep["health"]["state"], "down") << ep;
  EXPECT_EQ(ep["health"]["last"], "503") << ep;
  EXPECT_GE(ep["health"]["failures_in_a_row"].get<int>(), 2) << ep;
  EXPECT_EQ(ep["state"], "ready") << "health is not the operator's state";
  EXPECT_EQ(metricValue(admin, healthySeries("blue", blue_.address())), 1);
  EXPECT_EQ(sick.lastHealthCheck().host, sick.address());
  EXPECT_EQ(sick.lastHealthCheck().user_agent, "greenlight-health-check");
  // The idle colour is checked too: a switch would not send traffic to a release that is down.
  ASSERT_TRUE(testing::waitUntil([&] { return green_.healthChecks() >= 2; }, 5s));
  EXPECT_EQ(endpointIn(admin, "green", green_.address())["health"]["state"], "up");
  EXPECT_EQ(green_.requests(), 0) << "checks are not requests";

  httplib::Client cli("127.0.0.1", port_);
  for (int i = 0; i < 20; ++i) {
    auto res = cli.Get("/");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "blue");
  }
  EXPECT_EQ(sick.requests(), 0) << "no request reached the endpoint failing its check";
  EXPECT_GT(metricValue(admin, "greenlight_proxy_endpoint_health_checks_total{color=\"blue\",endpoint=\"" +
                                   sick.address() + "\",result=\"fail\",service=\"vehicles\"}"), 1);

  // Mended: `rise` passes bring it back, and it serves again.
  sick.healthWith(200);
  ASSERT_TRUE(testing::waitUntil([&] { return metricValue(admin, healthySeries("blue", sick.address())) == 1; }, 5s));
  ep = endpointIn(admin, "blue", sick.address());
  EXPECT_EQ(ep["health"]["state"], "up") << ep;
  EXPECT_EQ(ep["health"]["last"], "200") << ep;
  for (int i = 0; i < 20 && sick.requests() == 0; ++i) ASSERT_TRUE(cli.Get("/"));
  EXPECT_GT(sick.requests(), 0) << "back in rotation";
  svc_.reset();  // before `sick` stops
}

TEST_F(ProxyTest, AnEndpointThatCannotBeReachedFailsItsCheckWithTheReason) {
  const std::string dead = "127.0.0.1:" + std::to_string(testing::freePort());
  start(blue_.address() + ", " + dead, green_.address(), "", "{blue: 100, green: 0}",
        "      health_check: {interval: 20ms, timeout: 1s, fall: 1}\n");
  const int admin = svc_->adminPort();
  ASSERT_TRUE(testing::waitUntil([&] { return metricValue(admin, healthySeries("blue", dead)) == 0; }, 5s));
  const nlohmann::json ep = endpointIn(admin, "blue", dead);
  EXPECT_EQ(ep["health"]["state"], "down") << ep;
  EXPECT_EQ(ep["health"]["last"], "connect: Connection refused") << ep;
  // No request pays for the dead endpoint: no retry, no connect error.
  httplib::Client cli("127.0.0.1", port_);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(cli.Get("/"));
  const auto stats = nlohmann::json::parse(testing::httpGet(admin, "/api/v1/stats").body);
  EXPECT_EQ(stats["vehicles"]["retries"], 0) << stats;
  EXPECT_EQ(endpointIn(admin, "blue", dead)["requests"], 0);
}

TEST_F(ProxyTest, WhenEveryEndpointOfAColourFailsItsCheckRequestsStillGoThere) {
  // A wrong check path (or a release whose health endpoint broke) must not turn into a 503 for
  // every client: with nothing passing, the colour's endpoints are used anyway.
  blue_.healthWith(404);
  start(blue_.address(), green_.address(), "", "{blue: 100, green: 0}",
        "      health_check: {interval: 20ms, timeout: 1s, fall: 1}\n");
  ASSERT_TRUE(testing::waitUntil([&] { return metricValue(svc_->adminPort(), healthySeries("blue", blue_.address())) == 0; }, 5s));
  httplib::Client cli("127.0.0.1", port_);
  auto res = cli.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "blue");
}

TEST_F(ProxyTest, AnEndpointInMaintIsNotChecked) {
  start(blue_.address(), green_.address(), "", "{blue: 100, green: 0}",
        "      health_check: {interval: 20ms, timeout: 1s}\n");
  ASSERT_TRUE(testing::waitUntil([&] { return green_.healthChecks() >= 1; }, 5s));
  auto r = svc_->store().execute("set endpoint vehicles green " + green_.address() + " state maint", "test");
  ASSERT_TRUE(r.ok) << r.output;
  const int at_maint = green_.healthChecks();  // a check under way may still arrive: one more at most
  const int blue_before = blue_.healthChecks();
  ASSERT_TRUE(testing::waitUntil([&] { return blue_.healthChecks() >= blue_before + 10; }, 5s));
  EXPECT_LE(green_.healthChecks(), at_maint + 1);
  r = svc_->store().execute("set endpoint vehicles green " + green_.address() + " state ready", "test");
  ASSERT_TRUE(r.ok) << r.output;
  ASSERT_TRUE(testing::waitUntil([&] { return green_.healthChecks() >= at_maint + 2; }, 5s)) << "checked again";
}

std::string mirroredSeries(const char* color, const char* code) {
  return std::string("greenlight_proxy_mirrored_requests_total{code=\"") + code + "\",color=\"" + color +
         "\",service=\"vehicles\"}";
}

TEST_F(ProxyTest, MirroringCopiesGetsToTheIdleColourAndTheClientOnlySeesTheLiveOne) {
  start(blue_.address(), green_.address(), "", "{blue: 100, green: 0}", "      mirror: {percent: 100}\n");
  const int admin = svc_->adminPort();
  httplib::Client cli("127.0.0.1", port_);
  cli.set_keep_alive(true);
  // Not copied: requests with a body (a POST could change something twice).
  for (int i = 0; i < 5; ++i) {
    auto r = cli.Post("/", "hi", "text/plain");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "blue:hi");
  }
  for (int i = 0; i < 30; ++i) {
    auto r = cli.Get(i % 3 == 0 ? "/chunked" : "/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body.size(), i % 3 == 0 ? 30000u : 4u);  // blue's own answers, whole
    // One copy at a time, so each can reuse the last one's connection.
    ASSERT_TRUE(testing::waitUntil([&] { return metricValue(admin, mirroredSeries("green", "2xx")) == i + 1; }, 5s));
  }
  auto head = cli.Head("/");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  ASSERT_TRUE(testing::waitUntil([&] { return metricValue(admin, mirroredSeries("green", "2xx")) == 31; }, 5s))
      << metricValue(admin, mirroredSeries("green", "2xx"));
  EXPECT_EQ(green_.requests(), 31) << "every GET and HEAD copied once, no POST";
  EXPECT_EQ(blue_.requests(), 36);
  // The copies' answers (chunked ones too) were read to their end, so their connections were
  // reused as far as the backend allows: cpp-httplib closes one after 5 requests.
  constexpr int kBackendRequestsPerConnection = 5;
  EXPECT_EQ(green_.connections(), (31 + kBackendRequestsPerConnection - 1) / kBackendRequestsPerConnection);
  EXPECT_EQ(metricValue(admin, "greenlight_proxy_mirror_percent{service=\"vehicles\"}"), 100);
  const auto stats = nlohmann::json::parse(testing::httpGet(admin, "/api/v1/stats").body);
  EXPECT_EQ(stats["vehicles"]["green"]["mirrored"]["2xx"], 31);
  EXPECT_EQ(stats["vehicles"]["green"]["2xx"], 0) << "copies are not the colour's own traffic";
  EXPECT_EQ(stats["vehicles"]["blue"]["2xx"], 36);

  // Off at runtime, and never while both colours take traffic.
  auto r = svc_->store().execute("set mirror vehicles 0", "test");
  ASSERT_TRUE(r.ok) << r.output;
  RawConnection c(port_);
  for (int i = 0; i < 10; ++i) {
    c.send(get());
    EXPECT_EQ(c.read().body, "blue");
  }
  ASSERT_TRUE(svc_->store().execute("set mirror vehicles 100", "test").ok);
  setWeights(50, 50);
  for (int i = 0; i < 20; ++i) {
    c.send(get());
    EXPECT_EQ(c.read().status, 200);
  }
  setWeights(100, 0);
  c.send(get());  // copied again: its copy is the 32nd, and no other came in between
  EXPECT_EQ(c.read().body, "blue");
  ASSERT_TRUE(testing::waitUntil([&] { return metricValue(admin, mirroredSeries("green", "2xx")) == 32; }, 5s));
  EXPECT_EQ(metricValue(admin, mirroredSeries("green", "2xx")), 32);
}

TEST_F(ProxyTest, ABrokenIdleColourShowsInTheMirroredSeriesAndCostsTheClientsNothing) {
  green_.failWith(500);
  start(blue_.address(), green_.address(), "", "{blue: 100, green: 0}", "      mirror: {percent: 100}\n");
  const int admin = svc_->adminPort();
  RawConnection c(port_);
  for (int i = 0; i < 10; ++i) {
    c.send(get());
    EXPECT_EQ(c.read().body, "blue");
  }
  ASSERT_TRUE(testing::waitUntil([&] { return metricValue(admin, mirroredSeries("green", "5xx")) == 10; }, 5s));
  EXPECT_EQ(metricValue(admin, mirroredSeries("green", "2xx")), 0);
  EXPECT_EQ(metricValue(admin, "greenlight_proxy_requests_total{code=\"2xx\",color=\"blue\",service=\"vehicles\"}"), 10);
  svc_.reset();

  // An idle release that is not there at all: copies cannot be delivered.
  const std::string dead = "127.0.0.1:" + std::to_string(testing::freePort());
  start(blue_.address(), dead, "", "{blue: 100, green: 0}", "      mirror: {percent: 100}\n");
  RawConnection d(port_);
  for (int i = 0; i < 10; ++i) {
    d.send(get());
    EXPECT_EQ(d.read().body, "blue");
  }
  ASSERT_TRUE(testing::waitUntil([&] { return metricValue(svc_->adminPort(), mirroredSeries("green", "5xx")) == 10; }, 5s));
}

TEST_F(ProxyTest, ASlowIdleColourHoldsAtMostSixtyFourCopiesAndTheClientWaitsForNone) {
  blue_.release();  // blue answers /hold at once; the idle release holds every copy until released
  TestBackend slow("green", 80);
  start(blue_.address(), slow.address(), "  threads: 1\n", "{blue: 100, green: 0}", "      mirror: {percent: 100}\n");
  const int admin = svc_->adminPort();
  RawConnection c(port_);
  for (int i = 0; i < 70; ++i) {
    c.send(get("/hold"));
    EXPECT_EQ(c.read().body, "blue-held");
  }
  EXPECT_EQ(metricValue(admin, "greenlight_proxy_mirror_skipped_total{service=\"vehicles\"}"), 6);
  slow.release();
  ASSERT_TRUE(testing::waitUntil([&] { return metricValue(admin, mirroredSeries("green", "2xx")) == 64; }, 10s));
  // Room again: the next copy is sent.
  c.send(get("/hold"));
  EXPECT_EQ(c.read().body, "blue-held");
  ASSERT_TRUE(testing::waitUntil([&] { return metricValue(admin, mirroredSeries("green", "2xx")) == 65; }, 5s));
  svc_.reset();  // before `slow` stops: its pooled connections close first
}

}  // namespace
}  // namespace greenlight::proxy
