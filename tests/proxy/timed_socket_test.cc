// TimedSocket on an adopted descriptor (what the proxy's accept loop hands it): reads and writes
// are tried at once and complete through the loop's queue; one that would block waits in Asio,
// with the deadline and end-of-stream behaving as for a registered socket. Real loopback TCP.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "../../proxy/src/timed_socket.h"
#include "greenlight/common/time_source.h"
#include "support/test_support.h"

namespace greenlight::proxy {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct Result {
  boost::system::error_code ec;
  std::string data;
};

// A connected pair: `client` is a plain blocking socket; the server side, accepted with accept4
// (non-blocking), is adopted by a TimedSocket on `io`.
class AdoptedSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    asio::ip::tcp::acceptor listener(io, {asio::ip::make_address("127.0.0.1"), 0});
    client = testing::connectLoopback(listener.local_endpoint().port());
    ASSERT_GE(client, 0);
    const int fd = ::accept4(listener.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ASSERT_GE(fd, 0);
    server.emplace(TimedSocket::adopt(io.get_executor(), fd, asio::ip::tcp::v4(), time));
    server_fd = fd;
  }
  void TearDown() override {
    if (client >= 0) ::close(client);
  }
  void send(const std::string& s) { ASSERT_EQ(::send(client, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size())); }
  // Waits (with a deadline) until the server side has bytes to read: "already arrived".
  void waitReadable() {
    pollfd p{server_fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
  }
  void read(std::optional<Result>& out) {
    server->async_read_some(asio::buffer(buf), [this, &out](boost::system::error_code ec, std::size_t n) {
      out = Result{ec, std::string(buf, n)};
    });
  }

  asio::io_context io;
  RealTimeSource time;
  int client = -1;
  int server_fd = -1;
  std::optional<TimedSocket> server;
  char buf[64];
};

TEST_F(AdoptedSocket, AReadOfBytesAlreadyThereCompletesWithoutWaiting) {
  send("abc");
  waitReadable();
  std::optional<Result> got;
  read(got);
  EXPECT_FALSE(got) << "a completion must not run inside the initiating call";
  io.poll();  // runs what is ready; never waits
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->ec) << got->ec.message();
  EXPECT_EQ(got->data, "abc");
}

TEST_F(AdoptedSocket, AReadThatWouldBlockWaitsForTheBytes) {
  std::optional<Result> got;
  read(got);
  io.poll();
  EXPECT_FALSE(got) << "nothing was sent yet";
  send("de");
  io.run_for(5s);  // returns as soon as the read is done
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->ec) << got->ec.message();
  EXPECT_EQ(got->data, "de");
}

TEST_F(AdoptedSocket, APeerThatClosedReadsAsEndOfStream) {
  ::shutdown(client, SHUT_WR);
  waitReadable();
  std::optional<Result> got;
  read(got);
  io.run_for(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->ec, asio::error::eof);
}

TEST_F(AdoptedSocket, ADeadlineThatPassesWhileAReadWaitsIsATimeout) {
  server->expires_after(20ms);
  std::optional<Result> got;
  read(got);
  io.run_for(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->ec, boost::beast::error::timeout);
}

TEST_F(AdoptedSocket, AWriteReachesThePeerAndOneToAResetPeerFailsWithoutSigpipe) {
  std::optional<boost::system::error_code> wrote;
  const std::string hello = "hello";
  server->async_write_some(asio::buffer(hello), [&](boost::system::error_code ec, std::size_t n) {
    wrote = ec;
    EXPECT_EQ(n, hello.size());
  });
  io.run_for(5s);
  ASSERT_TRUE(wrote);
  EXPECT_FALSE(*wrote) << wrote->message();
  char in[16];
  ASSERT_EQ(::recv(client, in, sizeof in, 0), ssize_t(hello.size()));
  EXPECT_EQ(std::string(in, hello.size()), hello);

  linger reset{1, 0};  // close with a RST
  ::setsockopt(client, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  ::close(client);
  client = -1;
  boost::system::error_code failed;
  for (int attempt = 0; attempt < 3 && !failed; ++attempt) {  // the first write may only draw the RST
    wrote.reset();
    server->async_write_some(asio::buffer(hello), [&](boost::system::error_code ec, std::size_t) { wrote = ec; });
    io.restart();
    io.run_for(5s);
    ASSERT_TRUE(wrote);
    failed = *wrote;
  }
  EXPECT_TRUE(failed == asio::error::connection_reset || failed == asio::error::broken_pipe) << failed.message();
}

}  // namespace
}  // namespace greenlight::proxy
