// Router drivers against a recording runtime-API socket: what exactly goes over the wire.
#include "greenlight/controller/router.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <thread>

#include "support/test_support.h"

namespace greenlight::controller {
namespace {

using namespace std::chrono_literals;

// Accepts connections on a Unix socket, records each command line, answers `reply`.
class RecordingSocket {
 public:
  RecordingSocket(const std::string& path, std::string reply) : path_(path), reply_(std::move(reply)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::string line;
        char ch;
        while (::read(c, &ch, 1) == 1 && ch != '\n') line += ch;
        {
          std::lock_guard<std::mutex> lock(mu_);
          lines_.push_back(line);
        }
        (void)!::write(c, reply_.data(), reply_.size());
        ::close(c);
      }
    });
  }
  ~RecordingSocket() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  std::string path_, reply_;
  int fd_ = -1;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

TEST(RouterTest, HaproxyRaisesOneSideBeforeLoweringTheOtherInOneLine) {
  testing::TempDir dir;
  const std::string sock = dir.path() + "/haproxy.sock";
  RecordingSocket haproxy(sock, "\n");
  HaproxyRouterSpec spec;
  spec.socket = sock;
  spec.backend = "be";
  spec.servers = {{"blue", {"b1", "b2"}}, {"green", {"g1"}}};
  auto router = makeHaproxyRouter(spec, 2s);
  ASSERT_TRUE(router->setWeights(Color::kGreen, 100).ok());  // promote
  ASSERT_TRUE(router->setWeights(Color::kGreen, 0).ok());    // abort
  ASSERT_TRUE(router->setWeights(Color::kGreen, 10).ok());   // a first step
  ASSERT_TRUE(testing::waitUntil([&] { return haproxy.lines().size() == 3; }));
  const auto l = haproxy.lines();
  EXPECT_EQ(l[0], "set server be/g1 weight 100; set server be/b1 weight 0; set server be/b2 weight 0");
  EXPECT_EQ(l[1], "set server be/b1 weight 100; set server be/b2 weight 100; set server be/g1 weight 0");
  EXPECT_EQ(l[2], "set server be/b1 weight 90; set server be/b2 weight 90; set server be/g1 weight 10");
}

TEST(RouterTest, HaproxyErrorAnswerIsAFailure) {
  testing::TempDir dir;
  const std::string sock = dir.path() + "/haproxy.sock";
  RecordingSocket haproxy(sock, "No such server.\n");
  HaproxyRouterSpec spec;
  spec.socket = sock;
  spec.backend = "be";
  spec.servers = {{"blue", {"b1"}}, {"green", {"nope"}}};
  const Status s = makeHaproxyRouter(spec, 2s)->setWeights(Color::kGreen, 50);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("No such server"), std::string::npos);
}

TEST(RouterTest, BuiltinSendsOneAtomicSetWeight) {
  testing::TempDir dir;
  const std::string sock = dir.path() + "/proxy.sock";
  RecordingSocket proxy(sock, "ok vehicles blue 100->75 green 0->25\n");
  auto router = makeBuiltinRouter({sock, "vehicles"}, 2s);
  ASSERT_TRUE(router->setWeights(Color::kGreen, 25).ok());
  ASSERT_TRUE(testing::waitUntil([&] { return proxy.lines().size() == 1; }));
  EXPECT_EQ(proxy.lines()[0], "set weight vehicles blue 75 green 25");
}

TEST(RouterTest, UnreachableRouterIsAClearError) {
  auto router = makeBuiltinRouter({"/nonexistent/proxy.sock", "vehicles"}, 1s);
  const Status s = router->setWeights(Color::kGreen, 25);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/proxy.sock"), std::string::npos);
}

}  // namespace
}  // namespace greenlight::controller
