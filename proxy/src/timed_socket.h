// A TCP socket with a deadline, for the data plane (private to the proxy module): the part of
// beast::tcp_stream the proxy uses, with less work per operation. Beast's stream starts a timer
// wait and a wrapping operation for every read and write; here setting a deadline moves the
// socket to the end of its loop's list for that duration (EdgePoller::setDeadline: one timer
// per loop, none per connection), and an operation is wrapped only to turn "cancelled by the
// deadline" into beast::error::timeout. As with Beast's stream, a deadline that passes while an
// operation is pending closes the socket and every pending operation completes with
// beast::error::timeout; one that passes with none pending fails the next operation.
// Descriptors are the proxy's own, not Asio's: an accepted one is adopted (`adopt`), an
// upstream one is opened by `async_connect`. Reads and writes are tried on the descriptor and
// complete through the loop's EdgePoller queue (`EdgePoller::defer`); one that would block, or
// follows a short read or write (the kernel had no more), waits in the loop's EdgePoller,
// which registers a descriptor once, the first time it has to. A `Connection: close` exchange
// whose request has arrived and whose answer fits the send buffer never touches epoll (HAProxy
// does the same).
// TLS (startTls, then async_handshake) runs on the same descriptor and loop: OpenSSL reads and
// writes the socket through a BIO of ours (timed_socket.cc) that keeps the EdgePoller's
// readiness as the plain path does, and with SSL_MODE_RELEASE_BUFFERS a connection between
// requests holds no record buffer (nginx and HAProxy work the same way; Asio's ssl::stream kept
// two 17 KiB record vectors and a BIO pair of about the same size per connection, for its whole
// life).
// Not thread-safe: one event loop (the socket's executor) per connection.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>
#include <openssl/ssl.h>
#include <cerrno>
#include <memory>
#include <utility>

#include "coroutine.h"
#include "edge_poller.h"
#include "greenlight/common/time_source.h"

namespace greenlight::proxy {

namespace timed_socket_detail {

// Shared by the socket and its pending operations, all on one event loop: a plain counter (a
// shared_ptr's is atomic: two locked instructions per operation for nothing). Its deadline, if
// any, is in the loop's EdgePoller until it passes, is cleared, or the state goes.
struct State : boost::intrusive_ref_counter<State, boost::thread_unsafe_counter>, DeadlineEntry {
  State(const LoopExecutor& ex, const TimeSource& t, DeadlineEntry::Callback on_deadline)
      : DeadlineEntry(on_deadline), executor(ex), time(t) {}
  ~State() {
    if (poller) poller->clearDeadline(*this);
    if (ssl) SSL_free(ssl);  // normally freed by TimedSocket's close
  }
  LoopExecutor executor;
  int raw = -1;  // our descriptor (adopted or connected); closed by TimedSocket's close
  Waiter waiter;  // its readiness, once registered with the loop's EdgePoller
  EdgePoller* poller = nullptr;  // the loop's, once looked up
  const TimeSource& time;
  int pending = 0;                       // operations started and not completed
  bool expired = false;                  // the deadline passed while no operation was pending
  bool timed_out = false;                // the deadline closed the socket
  bool last_write = false;               // the writes from now on end the connection (lastWrite)
  // TLS on `raw` (startTls): reads and writes carry application data through it.
  SSL* ssl = nullptr;
  bool tls_ready = false;   // the handshake is done
  bool tls_closed = false;  // no close_notify now: sent, or the session failed
  bool tls_eof = false;     // the peer's end was read (what the BIO says to BIO_eof)
  int tls_errno = 0;        // the system error of the BIO's last failed read or write
};

// TLS on a State (timed_socket.cc).
enum class TlsStep { kHandshake, kRead, kWrite };
// One attempt at a TLS step: done (with `ec`, and `n` bytes read or written), or it waits until
// `want` is ready.
struct TlsAttempt {
  bool done = true;
  Direction want = Direction::kRead;
  boost::system::error_code ec;
  size_t n = 0;
};
// Sets `s` up as the server side of a TLS connection with `ctx`'s settings.
boost::system::error_code startTls(State& s, SSL_CTX* ctx);
TlsAttempt tlsAttempt(State& s, TlsStep step, void* data, size_t size);
// Sends close_notify once (best effort, never waits) when the session is up and has not failed.
void tlsCloseNotify(State& s);
// True when OpenSSL holds application data or a record's error to report: a read would not wait
// for the socket.
bool tlsReadable(State& s);
void tlsFree(State& s);

inline void mapTimeout(const State& s, boost::system::error_code& ec) {
  if (s.timed_out && (ec == boost::asio::error::operation_aborted || ec == boost::asio::error::bad_descriptor)) {
    ec = boost::beast::error::timeout;
  }
}

// Completion handler wrapper: the deadline's cancellation reads as a timeout. Keeps the
// connection state alive until the operation has completed.
template <class Handler>
struct Mapped {
  Handler handler;
  boost::intrusive_ptr<State> state;
  void operator()(boost::system::error_code ec, std::size_t n) {
    --state->pending;
    mapTimeout(*state, ec);
    state.reset();
    std::move(handler)(ec, n);
  }
  void operator()(boost::system::error_code ec) {
    --state->pending;
    mapTimeout(*state, ec);
    state.reset();
    std::move(handler)(ec);
  }
};

}  // namespace timed_socket_detail

class TimedSocket {
  using Impl = timed_socket_detail::State;
  template <class Handler>
  using Mapped = timed_socket_detail::Mapped<Handler>;

 public:
  using executor_type = LoopExecutor;  // an io_context's: see coroutine.h

  TimedSocket(const executor_type& ex, const TimeSource& time)
      : impl_(new Impl(ex, time, &deadlinePassed)) {}
  // Takes a connected, non-blocking descriptor (accept4 with SOCK_NONBLOCK), unregistered.
  static TimedSocket adopt(const executor_type& ex, int fd, const TimeSource& time) {
    TimedSocket s(ex, time);
    s.impl_->raw = fd;
    return s;
  }
  TimedSocket(TimedSocket&&) noexcept = default;
  TimedSocket& operator=(TimedSocket&&) = delete;
  TimedSocket(const TimedSocket&) = delete;
  ~TimedSocket() {
    if (!impl_) return;  // moved from
    if (impl_->poller) impl_->poller->clearDeadline(*impl_);
    close(*impl_);
  }

  executor_type get_executor() noexcept { return impl_->executor; }
  int native_handle() const { return impl_->raw; }  // -1 once closed (or never connected)
  void shutdown(boost::asio::socket_base::shutdown_type how, boost::system::error_code& ec) {
    if (how != boost::asio::socket_base::shutdown_receive) {
      if (impl_->ssl) timed_socket_detail::tlsCloseNotify(*impl_);  // before the FIN
      impl_->last_write = false;  // the FIN is out
    }
    if (impl_->raw < 0) {
      ec = boost::asio::error::bad_descriptor;
    } else if (::shutdown(impl_->raw, static_cast<int>(how)) != 0) {
      ec.assign(errno, boost::system::system_category());
    }
  }

  // The writes from now on are the connection's last: they go with MSG_MORE, so that a short
  // last segment waits in the kernel for the FIN, and the close sends both in one packet (one
  // packet, one wake-up of the peer fewer). The close then shuts the sending side down first:
  // a close with unread bytes would reset the connection and drop what still waits.
  void lastWrite() { impl_->last_write = true; }

  // The operations started from now on must be done within `d`.
  void expires_after(Duration d) {
    Impl& i = *impl_;
    i.timed_out = i.expired = false;
    EdgePoller& p = pollerOf(i);
    p.setDeadline(i, p.now(i.time) + d, d, i.time);
  }
  void expires_never() {
    impl_->timed_out = impl_->expired = false;
    if (impl_->poller) impl_->poller->clearDeadline(*impl_);
  }
  // From now on the connection is the server side of TLS with `ctx`'s settings (an adopted
  // descriptor, nothing read or written yet): async_handshake, then reads and writes carry
  // application data.
  boost::system::error_code startTls(SSL_CTX* ctx) { return timed_socket_detail::startTls(*impl_, ctx); }
  bool tls() const { return impl_->ssl != nullptr; }
  // The TLS handshake (void(error_code)); after startTls.
  template <class Token>
  auto async_handshake(Token&& token) {
    return initiate<void(boost::system::error_code)>(
        token,
        [](Impl& i, int, auto h) {
          if (!i.ssl) return post(i, std::move(h), boost::system::error_code(boost::asio::error::bad_descriptor));
          runTls<TlsStep::kHandshake>(i, boost::asio::mutable_buffer(), std::move(h));
        },
        0);
  }
  // Cancels pending operations: they complete with operation_aborted.
  void cancel() {
    if (EdgePoller* p = impl_->waiter.poller()) p->abort(impl_->waiter, boost::asio::error::operation_aborted);
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return transfer<false>(buffers, token);
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return transfer<true>(buffers, token);
  }
  // Completes (void(error_code)) once there is something to read — bytes, the peer's end or an
  // error, left for the read that follows — without reading: a keep-alive connection between
  // requests waits here holding no buffer. No system call when the last read already said the
  // kernel had no more (the usual case: the next request comes after the answer); else one
  // one-byte MSG_PEEK.
  template <class Token>
  auto async_wait_readable(Token&& token) {
    return initiate<void(boost::system::error_code)>(
        token, [](Impl& i, int, auto h) { startWaitReadable(i, std::move(h)); }, 0);
  }
  // Opens a non-blocking socket (TCP_NODELAY) and connects it to `to`.
  template <class Token>
  auto async_connect(const boost::asio::ip::tcp::endpoint& to, Token&& token) {
    return initiate<void(boost::system::error_code)>(
        token, [](Impl& i, const boost::asio::ip::tcp::endpoint& e, auto h) { startConnect(i, e, std::move(h)); }, to);
  }

 private:
  // A read or write waiting in the EdgePoller; tried again when the descriptor is ready.
  template <bool kWrite, class Buffers, class Handler>
  struct ParkedTransfer final : ParkedOp {
    ParkedTransfer(Impl& i, const Buffers& b, Handler&& h) : state(i), buffers(b), handler(std::move(h)) {}
    bool retry() override { return !tryNow(state, buffers, handler, kWrite); }
    void abort(boost::system::error_code ec) override { post(state, std::move(handler), ec, std::size_t{0}); }
    Impl& state;  // kept alive by the handler (Mapped)
    Buffers buffers;
    Handler handler;
  };
  // A connect in progress; done when the descriptor becomes writable (or fails).
  template <class Handler>
  struct ParkedConnect final : ParkedOp {
    ParkedConnect(Impl& i, Handler&& h) : state(i), handler(std::move(h)) {}
    bool retry() override {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(state.raw, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      abort(boost::system::error_code(err, boost::system::system_category()));
      return true;
    }
    void abort(boost::system::error_code ec) override { post(state, std::move(handler), ec); }
    Impl& state;
    Handler handler;
  };

  using TlsStep = timed_socket_detail::TlsStep;
  // A TLS step (handshake, read or write) waiting for `dir`; when it has to wait for the other
  // direction instead, it moves there.
  template <TlsStep kStep, class Buffers, class Handler>
  struct ParkedTls final : ParkedOp {
    ParkedTls(Impl& i, const Buffers& b, Handler&& h, Direction d) : state(i), buffers(b), handler(std::move(h)), dir(d) {}
    bool retry() override {
      const timed_socket_detail::TlsAttempt a = attemptTls<kStep>(state, buffers);
      if (a.done) {
        finishTls<kStep>(state, std::move(handler), a);
        return true;
      }
      if (a.want == dir) return false;
      parkTls<kStep>(state, buffers, std::move(handler), a.want);
      return true;
    }
    void abort(boost::system::error_code ec) override { finishTls<kStep>(state, std::move(handler), {true, dir, ec, 0}); }
    Impl& state;  // kept alive by the handler (Mapped)
    Buffers buffers;
    Handler handler;
    Direction dir;
  };
  // A TLS step on the first non-empty buffer (as Asio's ssl::stream does: one record at most).
  template <TlsStep kStep, class Buffers>
  static timed_socket_detail::TlsAttempt attemptTls(Impl& i, const Buffers& buffers) {
    if (!i.ssl) return {true, Direction::kRead, boost::asio::error::bad_descriptor, 0};  // closed meanwhile
    if constexpr (kStep == TlsStep::kHandshake) {
      return timed_socket_detail::tlsAttempt(i, kStep, nullptr, 0);
    } else {
      for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
        const auto b = boost::asio::buffer(*it);
        if (b.size() > 0) return timed_socket_detail::tlsAttempt(i, kStep, const_cast<void*>(static_cast<const void*>(b.data())), b.size());
      }
      return {};  // nothing to move: done at once, as with Asio
    }
  }
  template <TlsStep kStep, class Handler>
  static void finishTls(Impl& i, Handler&& h, const timed_socket_detail::TlsAttempt& a) {
    if constexpr (kStep == TlsStep::kHandshake) {
      post(i, std::move(h), a.ec);
    } else {
      post(i, std::move(h), a.ec, a.n);
    }
  }
  template <TlsStep kStep, class Buffers, class Handler>
  static void runTls(Impl& i, const Buffers& b, Handler h) {
    const timed_socket_detail::TlsAttempt a = attemptTls<kStep>(i, b);
    if (a.done) return finishTls<kStep>(i, std::move(h), a);
    parkTls<kStep>(i, b, std::move(h), a.want);
  }
  template <TlsStep kStep, class Buffers, class Handler>
  static void parkTls(Impl& i, const Buffers& b, Handler&& h, Direction want) {
    if (boost::system::error_code ec = registerWithPoller(i)) return finishTls<kStep>(i, std::move(h), {true, want, ec, 0});
    i.waiter.poller()->parkBeside(i.waiter, want, std::make_unique<ParkedTls<kStep, Buffers, Handler>>(i, b, std::move(h), want));
  }

  // A read or write: tried at once, or parked until the descriptor is ready.
  template <bool kWrite, class Buffers, class Token>
  auto transfer(const Buffers& buffers, Token& token) {
    return initiate<void(boost::system::error_code, std::size_t)>(
        token,
        [](Impl& i, const Buffers& b, auto h) {
          if (i.raw < 0) return post(i, std::move(h), boost::system::error_code(boost::asio::error::bad_descriptor), std::size_t{0});
          if (i.ssl) return runTls<kWrite ? TlsStep::kWrite : TlsStep::kRead>(i, b, std::move(h));
          if (!tryNow(i, b, h, kWrite)) return;
          boost::system::error_code ec = registerWithPoller(i);
          if (ec) return post(i, std::move(h), ec, std::size_t{0});
          using Op = ParkedTransfer<kWrite, Buffers, decltype(h)>;
          i.waiter.poller()->park(i.waiter, kWrite ? Direction::kWrite : Direction::kRead, std::make_unique<Op>(i, b, std::move(h)));
        },
        buffers);
  }
  // One read or write on our descriptor, now. Returns true when it would block: the kernel
  // said so, or a short transfer since said there was no more and no readiness edge came since
  // (then no system call is made). Otherwise the result goes to the handler through the loop's
  // queue (never inline, as Asio requires).
  template <class Buffers, class Handler>
  static bool tryNow(Impl& i, const Buffers& buffers, Handler& handler, bool write) {
    const Direction dir = write ? Direction::kWrite : Direction::kRead;
    iovec iov[16];
    size_t count = 0, total = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers) && count < 16; ++it) {
      const auto b = boost::asio::buffer(*it);
      if (b.size() == 0) continue;
      iov[count].iov_base = const_cast<void*>(static_cast<const void*>(b.data()));
      iov[count].iov_len = b.size();
      total += b.size();
      ++count;
    }
    ssize_t n = 0;  // nothing to move (as with Asio, that completes at once)
    if (total > 0) {
      if (i.waiter.registered() && !i.waiter.ready(dir)) return true;
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = count;
      const int send_flags = MSG_NOSIGNAL | (i.last_write ? MSG_MORE : 0);
      // System calls made directly: glibc's send/recv wrappers are thread-cancellation points,
      // switching the thread's cancellation mode on and off around every call (1% of the
      // proxy's CPU), and the proxy never cancels a thread.
      do {
        if (count == 1) {  // sendto/recvfrom: the kernel skips the message header and vector import
          n = write ? ::syscall(SYS_sendto, i.raw, iov[0].iov_base, iov[0].iov_len, send_flags, nullptr, 0)
                    : ::syscall(SYS_recvfrom, i.raw, iov[0].iov_base, iov[0].iov_len, 0, nullptr, nullptr);
        } else {
          n = ::syscall(write ? SYS_sendmsg : SYS_recvmsg, i.raw, &msg, write ? send_flags : 0);
        }
      } while (n < 0 && errno == EINTR);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        i.waiter.markBlocked(dir);
        return true;
      }
      // Short: the kernel had no more (or no more room). An edge-triggered event comes when
      // that changes, so the next operation waits for it instead of asking again.
      if (n > 0 && static_cast<size_t>(n) < total) i.waiter.markBlocked(dir);
    }
    boost::system::error_code ec;
    if (n < 0) ec.assign(errno, boost::system::system_category());
    if (n == 0 && total > 0 && !write) ec = boost::asio::error::eof;
    post(i, std::move(handler), ec, n > 0 ? static_cast<std::size_t>(n) : 0);
    return false;
  }
  static EdgePoller& pollerOf(Impl& i) {
    if (!i.poller) i.poller = &EdgePoller::of(i.executor.context());
    return *i.poller;
  }
  // Completes a read or write (with `ec, n`) or a connect (with `ec`) through the loop's queue
  // (EdgePoller's: never inline, as Asio requires).
  template <class Handler, class... Args>
  static void post(Impl& i, Handler&& handler, Args... args) {
    pollerOf(i).defer(new DeferredCall<Handler, Args...>(std::move(handler), args...));
  }
  template <class Handler>
  static void startConnect(Impl& i, const boost::asio::ip::tcp::endpoint& e, Handler h) {
    auto finish = [&i, &h](int err) { post(i, std::move(h), boost::system::error_code(err, boost::system::system_category())); };
    if (i.raw >= 0) return finish(EISCONN);
    const int fd = ::socket(e.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) return finish(errno);
    i.raw = fd;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, e.data(), static_cast<socklen_t>(e.size())) == 0) return finish(0);
    if (errno != EINPROGRESS) return finish(errno);
    if (boost::system::error_code ec = registerWithPoller(i)) return finish(ec.value());
    i.waiter.markBlocked(Direction::kWrite);  // writable means connected (or failed)
    i.waiter.poller()->park(i.waiter, Direction::kWrite, std::make_unique<ParkedConnect<Handler>>(i, std::move(h)));
  }
  template <class Handler>
  static void startWaitReadable(Impl& i, Handler h) {
    if (i.raw < 0) return post(i, std::move(h), boost::system::error_code(boost::asio::error::bad_descriptor));
    // Over TLS, bytes OpenSSL has read from the socket already (a record, or more of one).
    if (i.ssl && timed_socket_detail::tlsReadable(i)) return post(i, std::move(h), boost::system::error_code());
    if (!i.waiter.registered() || i.waiter.ready(Direction::kRead)) {
      char byte;
      ssize_t n;
      do {
        n = ::syscall(SYS_recvfrom, i.raw, &byte, 1, MSG_PEEK, nullptr, nullptr);
      } while (n < 0 && errno == EINTR);
      // Bytes, the end, or an error (which the read that follows reports): readable.
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return post(i, std::move(h), boost::system::error_code());
      i.waiter.markBlocked(Direction::kRead);
    }
    if (boost::system::error_code ec = registerWithPoller(i)) return post(i, std::move(h), ec);
    EdgePoller& p = *i.waiter.poller();
    p.park(i.waiter, Direction::kRead, std::make_unique<ParkedWait<Handler>>(p, std::move(h)));
  }
  static boost::system::error_code registerWithPoller(Impl& i) {
    boost::system::error_code ec;
    if (!i.waiter.registered()) pollerOf(i).add(i.waiter, i.raw, ec);
    return ec;
  }
  static void close(Impl& i) {
    if (i.raw >= 0) {
      if (EdgePoller* p = i.waiter.poller()) p->remove(i.waiter);
      if (i.ssl) {
        if (i.pending == 0) timed_socket_detail::tlsCloseNotify(i);  // not in the middle of a record
        timed_socket_detail::tlsFree(i);
      }
      if (i.last_write) ::syscall(SYS_shutdown, i.raw, SHUT_WR);  // sends what waits, with the FIN
      ::syscall(SYS_close, i.raw);  // direct, as the reads and writes (no cancellation switching)
      i.raw = -1;
    }
  }
  // Starts `op(socket, arg, handler)` with the handler wrapped. The argument is stored with the
  // operation (use_awaitable starts it later, at the co_await).
  template <class Signature, class Token, class Op, class Arg>
  auto initiate(Token& token, Op op, const Arg& arg) {
    return boost::asio::async_initiate<Token, Signature>(
        [this, op](auto handler, const Arg& a) {
          start();
          op(*impl_, a, Mapped<decltype(handler)>{std::move(handler), impl_});
        },
        token, arg);
  }
  // An operation starts: after a deadline that passed, it fails at once (as with Beast's stream).
  void start() {
    ++impl_->pending;
    if (impl_->expired) expire(*impl_);
  }
  static void expire(Impl& i) {
    i.expired = false;
    i.timed_out = true;
    close(i);
  }
  // The loop's EdgePoller says the deadline has passed.
  static void deadlinePassed(DeadlineEntry& e) {
    Impl& i = static_cast<Impl&>(e);
    if (i.pending > 0) {
      expire(i);
    } else {
      i.expired = true;  // the next operation fails
    }
  }

  boost::intrusive_ptr<Impl> impl_;
};

}  // namespace greenlight::proxy

// The wrapped handler keeps the coroutine's executor and allocator (Asio's recycled memory).
template <class Handler, class Executor>
struct boost::asio::associated_executor<greenlight::proxy::timed_socket_detail::Mapped<Handler>, Executor> {
  using type = boost::asio::associated_executor_t<Handler, Executor>;
  static type get(const greenlight::proxy::timed_socket_detail::Mapped<Handler>& h, const Executor& ex = Executor()) noexcept {
    return boost::asio::get_associated_executor(h.handler, ex);
  }
};
template <class Handler, class Allocator>
struct boost::asio::associated_allocator<greenlight::proxy::timed_socket_detail::Mapped<Handler>, Allocator> {
  using type = boost::asio::associated_allocator_t<Handler, Allocator>;
  static type get(const greenlight::proxy::timed_socket_detail::Mapped<Handler>& h, const Allocator& a = Allocator()) noexcept {
    return boost::asio::get_associated_allocator(h.handler, a);
  }
};
