// TimedSocket on its own descriptors (adopted from accept4, or opened by async_connect): reads
// and writes are tried at once and complete through the loop's queue; one that would block, or
// follows a short read, waits in the loop's EdgePoller, with the deadline, cancellation and
// end-of-stream behaving as for an Asio socket, whether or not EdgePoller::run drives the loop.
// Real loopback TCP.
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <optional>
#include <functional>
#include <future>
#include <string>
#include <thread>

#include "../../proxy/src/timed_socket.h"
#include "greenlight/common/time_source.h"
#include "greenlight/simulator/cert_gen.h"
#include "support/test_support.h"

namespace greenlight::proxy {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct Result {
  boost::system::error_code ec;
  std::string data;
};

// A connected loopback pair: `client` blocking; `server` accepted with accept4, non-blocking
// and unregistered (what TimedSocket::adopt takes). -1 where it failed.
struct LoopbackPair {
  int client = -1;
  int server = -1;
};
LoopbackPair loopbackPair(asio::io_context& io) {
  asio::ip::tcp::acceptor listener(io, {asio::ip::make_address("127.0.0.1"), 0});
  LoopbackPair p;
  p.client = testing::connectLoopback(listener.local_endpoint().port());
  if (p.client >= 0) p.server = ::accept4(listener.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return p;
}

// A connected pair: `client` is a plain blocking socket; the server side, accepted with accept4
// (non-blocking), is adopted by a TimedSocket on `io`.
class AdoptedSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    const LoopbackPair pair = loopbackPair(io);
    client = pair.client;
    ASSERT_GE(client, 0);
    const int fd = pair.server;
    ASSERT_GE(fd, 0);
    server.emplace(TimedSocket::adopt(io.get_executor(), fd, time));
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
  // Writes `s` from the server side and runs the loop until the write is done; all of it must go.
  void writeWhole(const std::string& s) {
    std::optional<boost::system::error_code> wrote;
    server->async_write_some(asio::buffer(s), [&](boost::system::error_code ec, std::size_t n) {
      wrote = ec;
      EXPECT_EQ(n, s.size());
    });
    io.run_for(5s);
    ASSERT_TRUE(wrote);
    EXPECT_FALSE(*wrote) << wrote->message();
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

TEST_F(AdoptedSocket, ADeadlineSetWhileAReadWaitsStillEndsIt) {
  std::optional<Result> got;
  read(got);  // waits, with no deadline yet
  io.poll();
  ASSERT_FALSE(got);
  server->expires_after(20ms);
  io.run_for(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->ec, boost::beast::error::timeout);
}

// Deadlines live in the loop's lists, one per duration, under one timer: a short deadline set
// after a long one (another list) must bring that timer forward.
TEST_F(AdoptedSocket, AShortDeadlineSetAfterALongOneOnAnotherSocketEndsFirst) {
  const LoopbackPair pair = loopbackPair(io);
  const int other_client = pair.client;
  ASSERT_GE(other_client, 0);
  ASSERT_GE(pair.server, 0);
  TimedSocket other = TimedSocket::adopt(io.get_executor(), pair.server, time);
  other.expires_after(60s);
  char other_buf[16];
  std::optional<boost::system::error_code> other_got;
  other.async_read_some(asio::buffer(other_buf), [&](boost::system::error_code ec, std::size_t) { other_got = ec; });
  server->expires_after(20ms);
  std::optional<Result> got;
  read(got);
  const MonoTime until = time.monotonicNow() + 10s;
  while (!got && time.monotonicNow() < until) io.run_one_for(100ms);
  ASSERT_TRUE(got) << "the 20 ms deadline waited behind the 60 s one";
  EXPECT_EQ(got->ec, boost::beast::error::timeout);
  EXPECT_FALSE(other_got) << "the other socket's deadline has not passed";
  ::close(other_client);
}

// A cleared deadline leaves nothing pending in the loop (no timer keeps io_context::run going).
TEST_F(AdoptedSocket, AClearedDeadlineLeavesTheLoopNothingToWaitFor) {
  server->expires_after(60s);
  server->expires_never();
  io.run_for(30s);
  EXPECT_TRUE(io.stopped()) << "run_for returned because the loop ran out of work, not time";
}

TEST_F(AdoptedSocket, AWriteReachesThePeerAndOneToAResetPeerFailsWithoutSigpipe) {
  const std::string hello = "hello";
  ASSERT_NO_FATAL_FAILURE(writeWhole(hello));
  char in[16];
  ASSERT_EQ(::recv(client, in, sizeof in, 0), ssize_t(hello.size()));
  EXPECT_EQ(std::string(in, hello.size()), hello);

  linger reset{1, 0};  // close with a RST
  ::setsockopt(client, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  ::close(client);
  client = -1;
  boost::system::error_code failed;
  std::optional<boost::system::error_code> wrote;
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

TEST_F(AdoptedSocket, ALastWriteWaitsInTheKernelForTheCloseAndLeavesWithTheFin) {
  server->lastWrite();
  const std::string bye = "bye";
  ASSERT_NO_FATAL_FAILURE(writeWhole(bye));
  int unsent = -1;
  ASSERT_EQ(::ioctl(server_fd, SIOCOUTQNSD, &unsent), 0);
  EXPECT_EQ(unsent, int(bye.size())) << "a short last segment waits for the FIN";
  server.reset();  // the close: the bytes and the FIN go out
  char in[16];
  ASSERT_EQ(::recv(client, in, sizeof in, 0), ssize_t(bye.size()));
  EXPECT_EQ(std::string(in, bye.size()), bye);
  EXPECT_EQ(::recv(client, in, sizeof in, 0), 0) << "then the end of the stream";
}

TEST_F(AdoptedSocket, AReadAfterAShortReadWaitsForTheNextBytes) {
  send("abc");
  waitReadable();
  std::optional<Result> got;
  read(got);
  io.run_for(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data, "abc");  // short: the socket is now known to be drained
  got.reset();
  read(got);
  io.restart();
  io.poll();
  EXPECT_FALSE(got) << "nothing more was sent";
  send("de");
  io.run_for(5s);  // returns once the read is done: the poller's wait does not keep it running
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->ec) << got->ec.message();
  EXPECT_EQ(got->data, "de");
}

// async_wait_readable: what a keep-alive session waits on between requests, holding no buffer.
TEST_F(AdoptedSocket, AWaitForReadableEndsWhenBytesArriveAndLeavesThemForTheRead) {
  std::optional<boost::system::error_code> ready;
  auto wait = [&] { server->async_wait_readable([&](boost::system::error_code ec) { ready = ec; }); };
  wait();  // before any byte: peeks, learns the socket is drained, waits
  io.poll();
  EXPECT_FALSE(ready) << "nothing was sent yet";
  send("ab");
  io.run_for(5s);
  ASSERT_TRUE(ready);
  EXPECT_FALSE(*ready) << ready->message();
  std::optional<Result> got;
  read(got);
  io.restart();
  io.run_for(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data, "ab") << "the wait consumed nothing";
  // After that short read the socket is known to be drained: the next wait waits for the edge.
  ready.reset();
  wait();
  io.restart();
  io.poll();
  EXPECT_FALSE(ready);
  send("c");
  io.run_for(5s);
  ASSERT_TRUE(ready);
  EXPECT_FALSE(*ready);
  // Bytes already there (the next request pipelined): done at once, through the loop's queue.
  ready.reset();
  wait();
  EXPECT_FALSE(ready) << "a completion must not run inside the initiating call";
  io.restart();
  io.poll();
  ASSERT_TRUE(ready);
  got.reset();
  read(got);
  io.restart();
  io.run_for(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data, "c");
}

TEST_F(AdoptedSocket, AWaitForReadableEndsAtThePeersCloseAndAtTheDeadline) {
  std::optional<boost::system::error_code> ready;
  server->expires_after(20ms);
  server->async_wait_readable([&](boost::system::error_code ec) { ready = ec; });
  io.run_for(5s);
  ASSERT_TRUE(ready);
  EXPECT_EQ(*ready, boost::beast::error::timeout) << "an idle client past its timeout";
  // A fresh connection whose client has closed: readable (the read then says end of stream).
  TearDown();
  server.reset();
  SetUp();
  ::shutdown(client, SHUT_WR);
  ready.reset();
  server->async_wait_readable([&](boost::system::error_code ec) { ready = ec; });
  io.restart();
  io.run_for(5s);
  ASSERT_TRUE(ready);
  EXPECT_FALSE(*ready) << ready->message();
  std::optional<Result> got;
  read(got);
  io.restart();
  io.run_for(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->ec, asio::error::eof);
}

TEST_F(AdoptedSocket, AnEmptyReadCompletesAtOnceEvenWhenTheSocketIsDrained) {
  std::optional<Result> got;
  read(got);  // nothing there: waits, and the socket is known to be drained
  io.poll();
  ASSERT_FALSE(got);
  std::optional<boost::system::error_code> empty;
  server->cancel();
  io.run_for(5s);
  ASSERT_TRUE(got);
  server->async_read_some(asio::mutable_buffer(), [&](boost::system::error_code ec, std::size_t n) {
    empty = ec;
    EXPECT_EQ(n, 0u);
  });
  io.restart();
  io.poll();
  ASSERT_TRUE(empty) << "an empty read has nothing to wait for";
  EXPECT_FALSE(*empty) << empty->message();
}

TEST_F(AdoptedSocket, CancelEndsAWaitingReadWithOperationAborted) {
  std::optional<Result> got;
  read(got);
  io.poll();
  ASSERT_FALSE(got);
  server->cancel();
  io.run_for(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->ec, asio::error::operation_aborted);
  send("still open");  // cancelling does not close: the next read gets the bytes
  got.reset();
  read(got);
  io.restart();
  io.run_for(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data, "still open");
}

// Starts a read on an adopted socket owned only by the read (as a coroutine's frame owns its
// socket), then destroys the io_context. `byte_there`: the read completes at once and its
// completion waits in the loop's queue; otherwise the read itself waits in the EdgePoller.
struct AbandonedRead {
  bool held_before = false;  // the pending read kept its socket alive until the shutdown
  bool released = false;     // the shutdown destroyed it
  bool called = false;       // its handler ran (it must not)
};
AbandonedRead readThenDestroyTheLoop(bool byte_there) {
  RealTimeSource time;
  AbandonedRead r;
  int client = -1;
  std::weak_ptr<TimedSocket> watch;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor listener(io, {asio::ip::make_address("127.0.0.1"), 0});
    client = testing::connectLoopback(listener.local_endpoint().port());
    if (client < 0) return r;
    if (byte_there && ::send(client, "x", 1, 0) != 1) return r;
    const int fd = ::accept4(listener.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return r;
    auto socket = std::make_shared<TimedSocket>(TimedSocket::adopt(io.get_executor(), fd, time));
    watch = socket;
    auto buf = std::make_shared<std::array<char, 16>>();
    socket->async_read_some(asio::buffer(*buf), [socket, buf, &r](boost::system::error_code, std::size_t) { r.called = true; });
    socket.reset();
    if (!byte_there) io.poll();  // the read finds nothing and waits
    r.held_before = !watch.expired();
  }
  r.released = watch.expired();
  ::close(client);
  return r;
}

TEST(TimedSocketTest, AReadOrWriteOnASocketNeverConnectedFailsWithBadDescriptor) {
  asio::io_context io;
  RealTimeSource time;
  TimedSocket never(io.get_executor(), time);
  char b[8];
  std::optional<boost::system::error_code> read_ec, write_ec;
  never.async_read_some(asio::buffer(b), [&](boost::system::error_code ec, std::size_t) { read_ec = ec; });
  never.async_write_some(asio::buffer(b), [&](boost::system::error_code ec, std::size_t) { write_ec = ec; });
  boost::system::error_code ec;
  never.shutdown(asio::socket_base::shutdown_both, ec);
  EXPECT_EQ(ec, asio::error::bad_descriptor);
  EXPECT_FALSE(read_ec) << "a completion must not run inside the initiating call";
  io.poll();
  ASSERT_TRUE(read_ec);
  ASSERT_TRUE(write_ec);
  EXPECT_EQ(*read_ec, asio::error::bad_descriptor);
  EXPECT_EQ(*write_ec, asio::error::bad_descriptor);
}

TEST(EdgePollerTest, DestroyingTheLoopReleasesAWaitingReadWithoutRunningIt) {
  const AbandonedRead r = readThenDestroyTheLoop(false);
  EXPECT_TRUE(r.held_before) << "the read is waiting and holds its socket";
  EXPECT_TRUE(r.released) << "the io_context's shutdown must destroy the waiting read";
  EXPECT_FALSE(r.called);
}

TEST(EdgePollerTest, DestroyingTheLoopDropsAQueuedCompletionWithoutRunningIt) {
  const AbandonedRead r = readThenDestroyTheLoop(true);
  EXPECT_TRUE(r.held_before) << "the queued completion holds its socket";
  EXPECT_TRUE(r.released) << "the io_context's shutdown must destroy the queued completion";
  EXPECT_FALSE(r.called);
}

// Completions run in the order queued, and one queued by a running completion (the next step
// of an exchange) runs in the same Asio handler: no trip round Asio's queue, whose reactor
// poll (an epoll_wait) would come between.
TEST(EdgePollerTest, QueuedCompletionsRunInOrderAndAChainInOneAsioHandler) {
  struct Step final : Deferred {
    Step(std::vector<int>* log, int id, EdgePoller* then_queue, int then_id)
        : log(log), id(id), then_queue(then_queue), then_id(then_id) {}
    void run() override {
      auto* l = log;
      const int i = id;
      EdgePoller* q = then_queue;
      const int next = then_id;
      delete this;
      l->push_back(i);
      if (q) q->defer(new Step(l, next, nullptr, 0));
    }
    void discard() override { delete this; }
    std::vector<int>* log;
    int id;
    EdgePoller* then_queue;
    int then_id;
  };
  asio::io_context io;
  EdgePoller& poller = EdgePoller::of(io);
  std::vector<int> log;
  poller.defer(new Step(&log, 1, &poller, 3));
  poller.defer(new Step(&log, 2, nullptr, 0));
  EXPECT_TRUE(log.empty()) << "never run inline";
  const size_t handlers = io.poll();
  EXPECT_EQ(log, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(handlers, 1u) << "the chain ran inside one Asio handler";
}

// A listener waits in the set for its next connection (the accept loop's wait), and a wait
// whose listener leaves the set ends with operation_aborted.
TEST(EdgePollerTest, AListenerWaitEndsWhenAConnectionArrivesAndIsAbortedWhenRemoved) {
  asio::io_context io;
  EdgePoller& poller = EdgePoller::of(io);
  asio::ip::tcp::acceptor listener(io, {asio::ip::make_address("127.0.0.1"), 0});
  listener.non_blocking(true);
  Waiter ready;
  boost::system::error_code ec;
  ASSERT_TRUE(poller.add(ready, listener.native_handle(), ec)) << ec.message();
  std::optional<boost::system::error_code> woke;
  poller.asyncWaitReadable(ready, [&](boost::system::error_code e) { woke = e; });
  io.poll();
  EXPECT_FALSE(woke) << "no connection yet";
  const int client = testing::connectLoopback(listener.local_endpoint().port());
  ASSERT_GE(client, 0);
  for (int i = 0; i < 500 && !woke; ++i) io.run_one_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(woke);
  EXPECT_FALSE(*woke) << woke->message();
  const int accepted = ::accept4(listener.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  EXPECT_GE(accepted, 0);
  // Drained again: the next wait parks, and ends when the listener leaves the set.
  EXPECT_LT(::accept4(listener.native_handle(), nullptr, nullptr, SOCK_NONBLOCK), 0);
  std::optional<boost::system::error_code> ended;
  poller.asyncWaitReadable(ready, [&](boost::system::error_code e) { ended = e; });
  io.restart();  // it ran out of work after the first wait's completion
  io.poll();
  EXPECT_FALSE(ended);
  poller.remove(ready);
  io.poll();
  ASSERT_TRUE(ended);
  EXPECT_EQ(*ended, asio::error::operation_aborted);
  if (accepted >= 0) ::close(accepted);
  ::close(client);
}

// asyncYield resumes from the loop's queue, after what was queued there before it (a
// completion another connection's read queued), not at once.
// parkBeside: two operations wait for the same direction; an edge tries both, one that is not
// done yet stays; removing the descriptor ends the rest.
TEST(EdgePollerTest, OperationsParkedBesideEachOtherAreAllTriedAndAllAborted) {
  struct Counted final : ParkedOp {
    Counted(int& t, int d, std::optional<boost::system::error_code>& a) : tries(t), done_after(d), aborted(a) {}
    bool retry() override { return ++tries >= done_after; }
    void abort(boost::system::error_code ec) override { aborted = ec; }
    int& tries;
    int done_after;
    std::optional<boost::system::error_code>& aborted;
  };
  asio::io_context io;
  EdgePoller& poller = EdgePoller::of(io);
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  Waiter w;
  boost::system::error_code ec;
  ASSERT_TRUE(poller.add(w, fds[0], ec)) << ec.message();
  w.markBlocked(Direction::kRead);
  int first_tries = 0, second_tries = 0;
  std::optional<boost::system::error_code> first_aborted, second_aborted;
  poller.parkBeside(w, Direction::kRead, std::make_unique<Counted>(first_tries, 1, first_aborted));
  poller.parkBeside(w, Direction::kRead, std::make_unique<Counted>(second_tries, 2, second_aborted));
  io.poll();
  EXPECT_EQ(first_tries + second_tries, 0) << "nothing to read yet";
  ASSERT_EQ(::write(fds[1], "a", 1), 1);
  for (int i = 0; i < 500 && first_tries == 0; ++i) io.run_one_for(std::chrono::milliseconds(10));
  EXPECT_EQ(first_tries, 1);
  EXPECT_EQ(second_tries, 1);  // tried too; not done yet, so it waits on
  poller.remove(w);
  EXPECT_FALSE(first_aborted) << "done: not aborted";
  ASSERT_TRUE(second_aborted);
  EXPECT_EQ(*second_aborted, asio::error::operation_aborted);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(EdgePollerTest, AYieldResumesAfterTheCompletionsQueuedBeforeIt) {
  asio::io_context io;
  EdgePoller& poller = EdgePoller::of(io);
  std::vector<std::string> log;
  auto routine = [&]() -> Task<void> {
    log.push_back("before");
    poller.defer(new DeferredCall<std::function<void()>>([&] { log.push_back("queued"); }));
    co_await poller.asyncYield(kAwait);
    log.push_back("after");
  };
  asio::co_spawn(io, routine(), asio::detached);
  io.run();
  EXPECT_EQ(log, (std::vector<std::string>{"before", "queued", "after"}));
}

// EdgePoller::of remembers the last loop it was asked about per thread; a loop destroyed and
// another made (here at the same address, as the allocator tends to do) must get its own poller,
// never the destroyed one.
TEST(EdgePollerTest, ALoopMadeAfterAnotherIsDestroyedGetsItsOwnPoller) {
  std::optional<asio::io_context> io;
  io.emplace();
  EXPECT_EQ(&EdgePoller::of(*io), &asio::use_service<EdgePoller>(*io));
  EXPECT_EQ(&EdgePoller::of(*io), &EdgePoller::of(*io));
  asio::io_context other;
  EXPECT_EQ(&EdgePoller::of(other), &asio::use_service<EdgePoller>(other));
  EXPECT_EQ(&EdgePoller::of(*io), &asio::use_service<EdgePoller>(*io)) << "asked about another loop in between";
  io.reset();
  io.emplace();
  EXPECT_EQ(&EdgePoller::of(*io), &asio::use_service<EdgePoller>(*io));
}

// A forked child (a rollout's deploy command, before its exec) holds copies of the proxy's
// descriptors: closing ours must still take the socket out of the poller's set, or its next
// event would reach a freed waiter (ASan reports that as a use after free).
TEST_F(AdoptedSocket, ASocketClosedWhileAnotherDescriptorHoldsItGetsNoMoreEvents) {
  std::optional<Result> got;
  read(got);  // registers with the poller and waits
  io.poll();
  ASSERT_FALSE(got);
  const int copy = ::dup(server_fd);  // as fork() would
  ASSERT_GE(copy, 0);
  server.reset();  // closes our descriptor; the socket lives on through `copy`
  io.run_for(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->ec, asio::error::operation_aborted);
  send("after close");  // an event on the socket, if it were still in the set
  pollfd p{copy, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  io.restart();
  io.poll();
  // A second socket makes the loop collect its set's events again.
  const LoopbackPair pair = loopbackPair(io);
  const int c2 = pair.client;
  ASSERT_GE(c2, 0);
  const int fd2 = pair.server;
  ASSERT_GE(fd2, 0);
  TimedSocket other = TimedSocket::adopt(io.get_executor(), fd2, time);
  std::optional<Result> got2;
  other.async_read_some(asio::buffer(buf), [&](boost::system::error_code ec, std::size_t n) { got2 = Result{ec, std::string(buf, n)}; });
  io.restart();
  io.poll();
  ASSERT_FALSE(got2);
  ASSERT_EQ(::send(c2, "x", 1, MSG_NOSIGNAL), 1);
  io.run_for(5s);
  ASSERT_TRUE(got2);
  EXPECT_EQ(got2->data, "x");
  ::close(c2);
  ::close(copy);
}

// EdgePoller::run drives a loop from a thread of its own, as the proxy's threads do.
class PollerLoop : public ::testing::Test {
 protected:
  void SetUp() override {
    thread = std::thread([this] { EdgePoller::run(io); });
  }
  void TearDown() override {
    io.stop();
    thread.join();
  }
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(io);
  RealTimeSource time;
  std::thread thread;
};

// Echoes every read back, one read and one write at a time, on the loop's thread.
struct Echo : std::enable_shared_from_this<Echo> {
  explicit Echo(TimedSocket s) : socket(std::move(s)) {}
  void read() {
    socket.async_read_some(asio::buffer(buf), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
      if (ec) return;
      asio::async_write(self->socket, asio::buffer(self->buf, n), [self](boost::system::error_code ec, std::size_t) {
        if (!ec) self->read();
      });
    });
  }
  TimedSocket socket;
  char buf[256];
};

TEST_F(PollerLoop, AnEchoRunsManyExchangesOnOneConnection) {
  const LoopbackPair pair = loopbackPair(io);
  const int client = pair.client;
  ASSERT_GE(client, 0);
  const int fd = pair.server;
  ASSERT_GE(fd, 0);
  asio::post(io, [this, fd] { std::make_shared<Echo>(TimedSocket::adopt(io.get_executor(), fd, time))->read(); });
  // Every exchange's read finds the socket drained by the previous one's short read.
  for (int i = 0; i < 500; ++i) {
    const std::string msg = "exchange " + std::to_string(i);
    ASSERT_EQ(::send(client, msg.data(), msg.size(), MSG_NOSIGNAL), ssize_t(msg.size()));
    std::string back;
    char in[256];
    while (back.size() < msg.size()) {
      const ssize_t n = ::recv(client, in, sizeof in, 0);  // times out after 5 s
      ASSERT_GT(n, 0) << "no echo for exchange " << i;
      back.append(in, static_cast<size_t>(n));
    }
    ASSERT_EQ(back, msg);
  }
  ::close(client);
}

TEST_F(PollerLoop, AConnectReachesAListenerAndOneToAClosedPortIsRefused) {
  asio::ip::tcp::acceptor listener(io, {asio::ip::make_address("127.0.0.1"), 0});
  const asio::ip::tcp::endpoint open_end = listener.local_endpoint();
  asio::ip::tcp::endpoint closed_end;
  {
    asio::ip::tcp::acceptor gone(io, {asio::ip::make_address("127.0.0.1"), 0});
    closed_end = gone.local_endpoint();
  }  // nothing listens there now
  std::promise<std::pair<boost::system::error_code, std::string>> opened;
  std::promise<boost::system::error_code> refused;
  auto a = std::make_shared<std::optional<TimedSocket>>();
  auto b = std::make_shared<std::optional<TimedSocket>>();
  asio::post(io, [&, a, b] {
    a->emplace(io.get_executor(), time);
    (*a)->expires_after(5s);
    (*a)->async_connect(open_end, [&, a](boost::system::error_code ec) {
      if (ec) return opened.set_value({ec, ""});
      auto hello = std::make_shared<std::string>("hello");
      asio::async_write(**a, asio::buffer(*hello), [&, a, hello](boost::system::error_code ec, std::size_t) {
        opened.set_value({ec, "sent"});
      });
    });
    b->emplace(io.get_executor(), time);
    (*b)->expires_after(5s);
    (*b)->async_connect(closed_end, [&, b](boost::system::error_code ec) { refused.set_value(ec); });
  });
  auto fo = opened.get_future();
  auto fr = refused.get_future();
  ASSERT_EQ(fo.wait_for(5s), std::future_status::ready);
  const auto [ec, what] = fo.get();
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(what, "sent");
  const int accepted = ::accept(listener.native_handle(), nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  char in[16];
  EXPECT_EQ(::recv(accepted, in, sizeof in, 0), 5);
  EXPECT_EQ(std::string(in, 5), "hello");
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  ::close(accepted);
  ASSERT_EQ(fr.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(fr.get(), asio::error::connection_refused);
  std::promise<void> closed;
  asio::post(io, [a, b, &closed, &nodelay, &len] {
    ::getsockopt((*a)->native_handle(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len);
    a->reset();
    b->reset();
    closed.set_value();
  });
  ASSERT_EQ(closed.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_NE(nodelay, 0) << "upstream connections are opened with TCP_NODELAY";
}

}  // namespace
}  // namespace greenlight::proxy

namespace greenlight::proxy {
namespace {

// TLS on an adopted socket (startTls, async_handshake): the server side on the loop, the client
// OpenSSL on the blocking socket, in a thread of its own where it has to run beside the loop.
class TlsSocket : public AdoptedSocket {
 protected:
  void SetUp() override {
    AdoptedSocket::SetUp();
    auto ca = simulator::CertAuthority::create(dir.path(), "socket test CA");
    ASSERT_TRUE(ca.ok()) << ca.status().message();
    auto files = ca->issue("server", -std::chrono::hours(1), std::chrono::hours(24));
    ASSERT_TRUE(files.ok()) << files.status().message();
    server_ctx = SSL_CTX_new(TLS_server_method());
    ASSERT_EQ(SSL_CTX_use_certificate_chain_file(server_ctx, files->cert_file.c_str()), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey_file(server_ctx, files->key_file.c_str(), SSL_FILETYPE_PEM), 1);
    client_ctx = SSL_CTX_new(TLS_client_method());
    ASSERT_EQ(SSL_CTX_load_verify_locations(client_ctx, ca->caFile().c_str(), nullptr), 1);
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, nullptr);
    client_ssl = SSL_new(client_ctx);
    SSL_set_fd(client_ssl, client);
    ASSERT_FALSE(server->startTls(server_ctx));
    EXPECT_TRUE(server->tls());
  }
  void TearDown() override {
    if (peer.joinable()) peer.join();
    server.reset();
    SSL_free(client_ssl);
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(server_ctx);
    AdoptedSocket::TearDown();
  }
  // Both sides' handshakes; the server's result.
  boost::system::error_code handshake() {
    std::thread client_side([this] { client_connected = SSL_connect(client_ssl) == 1; });
    std::optional<boost::system::error_code> done;
    server->async_handshake([&](boost::system::error_code ec) { done = ec; });
    io.run_for(5s);
    client_side.join();
    io.restart();
    return done.value_or(asio::error::timed_out);
  }
  // Starts writing all of `big` from the server side.
  void startWrite(const std::string& big) {
    asio::async_write(*server, asio::buffer(big), [this](boost::system::error_code ec, std::size_t n) {
      wrote = ec;
      written = n;
    });
  }
  // The client reads `big` in its own thread (then does `after`) while the loop runs until the
  // server's write and the read into `got` are done; both must have worked, and the read must
  // have got "done".
  void expectBothDone(const std::string& big, std::optional<Result>& got, const std::function<void()>& after) {
    std::string received;
    peer = std::thread([&] {
      received = clientRead(big.size());
      after();
    });
    io.restart();
    io.run_for(20s);  // returns when both are done
    peer.join();
    ASSERT_TRUE(wrote);
    EXPECT_FALSE(*wrote) << wrote->message();
    EXPECT_EQ(written, big.size());
    EXPECT_TRUE(received == big) << received.size() << " bytes received";
    ASSERT_TRUE(got);
    EXPECT_FALSE(got->ec) << got->ec.message();
    EXPECT_EQ(got->data, "done");
  }
  std::string clientRead(size_t n) {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      const int r = SSL_read(client_ssl, out.data() + got, static_cast<int>(n - got));
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    out.resize(got);
    return out;
  }

  testing::TempDir dir;
  SSL_CTX* server_ctx = nullptr;
  SSL_CTX* client_ctx = nullptr;
  SSL* client_ssl = nullptr;
  bool client_connected = false;
  std::thread peer;
  std::optional<boost::system::error_code> wrote;  // startWrite's result
  size_t written = 0;
};

TEST_F(TlsSocket, DataGoesBothWaysAfterTheHandshakeAndThePeersCloseReadsAsEndOfStream) {
  const boost::system::error_code ec = handshake();
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(client_connected);
  ASSERT_EQ(SSL_write(client_ssl, "ping", 4), 4);
  std::optional<Result> got;
  read(got);
  io.run_for(5s);
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->ec) << got->ec.message();
  EXPECT_EQ(got->data, "ping");
  io.restart();
  writeWhole("pong");
  EXPECT_EQ(clientRead(4), "pong");
  SSL_shutdown(client_ssl);  // close_notify
  got.reset();
  io.restart();
  read(got);
  io.run_for(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->ec, asio::error::eof);
}

// A write much larger than the socket buffers parks, while a read waits beside it; each ends
// when its direction is ready, in the order the peer makes them so.
TEST_F(TlsSocket, AWriteThatMustWaitAndAWaitingReadBothComplete) {
  ASSERT_FALSE(handshake());
  const std::string big(16 << 20, 'x');
  std::optional<Result> got;
  read(got);
  startWrite(big);
  io.run_for(100ms);  // the peer reads nothing yet: neither can be done
  EXPECT_FALSE(wrote) << "16 MiB fit in the socket buffers";
  EXPECT_FALSE(got);
  expectBothDone(big, got, [this] { SSL_write(client_ssl, "done", 4); });
}

// The peer asks for a key update (TLS 1.3) while our big write waits for room and a read waits
// for data: the update is taken in, answered, and both directions go on.
TEST_F(TlsSocket, APeersKeyUpdateWhileAWriteAndAReadWaitLeavesBothWorking) {
  ASSERT_FALSE(handshake());
  const std::string big(16 << 20, 'y');
  startWrite(big);
  std::optional<Result> got;
  read(got);
  io.run_for(100ms);
  ASSERT_FALSE(wrote);
  ASSERT_EQ(SSL_key_update(client_ssl, SSL_KEY_UPDATE_REQUESTED), 1);
  ASSERT_EQ(SSL_write(client_ssl, "done", 4), 4);  // sends the key update first
  io.restart();
  io.run_for(100ms);
  EXPECT_FALSE(wrote);
  expectBothDone(big, got, [] {});
}

TEST_F(TlsSocket, AHandshakeThatStallsEndsAtTheDeadline) {
  send("\x16\x03\x01");  // the start of a record header, and nothing more
  server->expires_after(20ms);
  std::optional<boost::system::error_code> done;
  server->async_handshake([&](boost::system::error_code ec) { done = ec; });
  io.run_for(5s);
  ASSERT_TRUE(done);
  EXPECT_EQ(*done, boost::beast::error::timeout);
}

TEST_F(TlsSocket, AHandshakeWithSomethingElseThanTlsFails) {
  send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  std::optional<boost::system::error_code> done;
  server->async_handshake([&](boost::system::error_code ec) { done = ec; });
  io.run_for(5s);
  ASSERT_TRUE(done);
  EXPECT_TRUE(*done);
  EXPECT_NE(*done, boost::beast::error::timeout);
}

}  // namespace
}  // namespace greenlight::proxy
