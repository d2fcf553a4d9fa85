// A proxy replaced by another (`greenlight proxy --takeover`, real processes): the listening
// socket passes from the old process to the new one, so under a steady stream of new client
// connections not one attempt is refused or fails; the new process serves with the same routes
// and the old one finishes and exits.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "support/test_backend.h"
#include "support/test_support.h"

namespace greenlight::proxy {
namespace {

using namespace std::chrono_literals;
using testing::TestBackend;

enum class Attempt { kOk, kRefused, kFailed };

// One request on a new connection (Connection: close); what happened to it.
Attempt oneRequest(int port, std::string* body) {
  const int fd = testing::connectLoopback(port);
  if (fd < 0) return errno == ECONNREFUSED ? Attempt::kRefused : Attempt::kFailed;
  const std::string req = "GET / HTTP/1.1\r\nHost: v\r\nConnection: close\r\n\r\n";
  std::string got;
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size())) {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, size_t(n));
  }
  ::close(fd);
  if (got.rfind("HTTP/1.1 200", 0) != 0) return Attempt::kFailed;
  *body = got.substr(got.find("\r\n\r\n") + 4);
  return Attempt::kOk;
}

TEST(ProxyTakeover, AReplacementProxyTakesTheListenerWithoutRefusingOneConnection) {
  testing::TempDir dir;
  TestBackend blue("blue"), green("green");
  const int port = testing::freePort();
  const std::string socket_path = dir.path() + "/proxy.sock";
  auto config = [&](const std::string& extra) {
    return dir.write("proxy.yaml", "log: {level: info}\nadmin: {listen: 127.0.0.1:" + std::to_string(testing::freePort()) +
        "}\nproxy:\n  state_file: " + dir.path() + "/routes.json\n  runtime_api: {socket: " + socket_path + "}\n" + extra +
        "  services:\n    - name: vehicles\n      listen: 127.0.0.1:" + std::to_string(port) + "\n"
        "      blue: [" + blue.address() + "]\n      green: [" + green.address() + "]\n      weights: {blue: 100, green: 0}\n");
  };
  testing::ChildProcess old_proxy({GREENLIGHT_BINARY, "proxy", "--config", config("")}, dir.path() + "/old.log");
  std::string body;
  ASSERT_TRUE(testing::waitUntil([&] { return oneRequest(port, &body) == Attempt::kOk; }, 10s)) << testing::readFile(dir.path() + "/old.log");
  // A routing change made on the old proxy is kept by the new one (state file).
  ASSERT_TRUE(testing::waitUntil([&] { return std::system(("echo 'set weight vehicles blue 0 green 100' | "
      "python3 -c \"import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect('" + socket_path + "'); "
      "s.sendall(sys.stdin.buffer.read()); print(s.recv(4096).decode())\" > /dev/null").c_str()) == 0; }, 5s));
  ASSERT_TRUE(testing::waitUntil([&] { return oneRequest(port, &body) == Attempt::kOk && body == "green"; }, 5s));

  std::atomic<bool> done{false};
  std::atomic<int> ok{0}, refused{0}, failed{0}, not_green{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      std::string b;
      while (!done) {
        switch (oneRequest(port, &b)) {
          case Attempt::kOk: ++ok; if (b != "green") ++not_green; break;
          case Attempt::kRefused: ++refused; break;
          case Attempt::kFailed: ++failed; break;
        }
      }
    });
  }
  ASSERT_TRUE(testing::waitUntil([&] { return ok > 200; }, 10s));
  // A new config (a different passive-health setting) through a takeover.
  testing::ChildProcess new_proxy({GREENLIGHT_BINARY, "proxy", "--config", config("  passive_health: {failures: 5, ejection: 5s}\n"), "--takeover"},
                                  dir.path() + "/new.log");
  EXPECT_EQ(old_proxy.wait(20s), 0) << "the old proxy exits cleanly after the hand-over\n" << testing::readFile(dir.path() + "/old.log");
  const int at_exit = ok;
  ASSERT_TRUE(testing::waitUntil([&] { return ok > at_exit + 300; }, 10s)) << "the new proxy serves\n" << testing::readFile(dir.path() + "/new.log");
  done = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(refused, 0) << "a connection attempt was refused during the hand-over";
  EXPECT_EQ(failed, 0) << "a request failed during the hand-over";
  EXPECT_EQ(not_green, 0) << "the new proxy kept the routes";
  EXPECT_NE(testing::readFile(dir.path() + "/old.log").find("listeners handed over"), std::string::npos);
  EXPECT_TRUE(new_proxy.running());
  new_proxy.signal(SIGTERM);
  EXPECT_EQ(new_proxy.wait(15s), 0);
}

TEST(ProxyTakeover, ATakeoverWithABadConfigChangesNothing) {
  testing::TempDir dir;
  const std::string bad = dir.write("bad.yaml", "proxy:\n  services: []\n  runtime_api: {socket: " + dir.path() + "/none.sock}\n  bogus: 1\n");
  testing::ChildProcess p({GREENLIGHT_BINARY, "proxy", "--config", bad, "--takeover"}, dir.path() + "/p.log");
  EXPECT_EQ(p.wait(10s), 1);
  EXPECT_NE(testing::readFile(dir.path() + "/p.log").find("bogus"), std::string::npos) << testing::readFile(dir.path() + "/p.log");
  const std::string no_runner = dir.write("ok.yaml", "proxy:\n  runtime_api: {socket: " + dir.path() + "/none.sock}\n"
      "  services:\n    - {name: v, listen: 127.0.0.1:0, blue: [127.0.0.1:9], green: [], weights: {blue: 100, green: 0}}\n");
  testing::ChildProcess q({GREENLIGHT_BINARY, "proxy", "--config", no_runner, "--takeover"}, dir.path() + "/q.log");
  EXPECT_EQ(q.wait(10s), 1);
  EXPECT_NE(testing::readFile(dir.path() + "/q.log").find("cannot reach the running proxy"), std::string::npos)
      << testing::readFile(dir.path() + "/q.log");
}

// `greenlight proxy` runs as greenlight-proxy, the jemalloc build, where the build made one
// (not under the sanitizers): same process, serving, with jemalloc mapped.
TEST(ProxyProcess, RunsAsTheJemallocBuildWhereThereIsOne) {
  testing::TempDir dir;
  TestBackend blue("blue");
  const int port = testing::freePort();
  const std::string config = dir.write("proxy.yaml", "proxy:\n  services:\n    - name: v\n      listen: 127.0.0.1:" +
      std::to_string(port) + "\n      blue: [" + blue.address() + "]\n      green: []\n      weights: {blue: 100, green: 0}\n");
  testing::ChildProcess p({GREENLIGHT_BINARY, "proxy", "--config", config}, dir.path() + "/p.log");
  std::string body;
  ASSERT_TRUE(testing::waitUntil([&] { return oneRequest(port, &body) == Attempt::kOk; }, 10s)) << testing::readFile(dir.path() + "/p.log");
  EXPECT_EQ(body, "blue");
  char exe[4096] = {};
  ASSERT_GT(::readlink(("/proc/" + std::to_string(p.pid()) + "/exe").c_str(), exe, sizeof exe - 1), 0);
  const std::string maps = testing::readFile("/proc/" + std::to_string(p.pid()) + "/maps");
#ifdef GREENLIGHT_JEMALLOC_BUILD
  EXPECT_TRUE(std::string(exe).ends_with("/greenlight-proxy")) << exe;
  EXPECT_NE(maps.find("libjemalloc"), std::string::npos);
#else
  EXPECT_TRUE(std::string(exe).ends_with("/greenlight")) << exe;
  EXPECT_EQ(maps.find("libjemalloc"), std::string::npos);
#endif
}

}  // namespace
}  // namespace greenlight::proxy
