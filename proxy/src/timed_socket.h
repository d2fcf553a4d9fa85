// A TCP socket with a deadline, for the data plane (private to the proxy module): the part of
// beast::tcp_stream the proxy uses, with less work per operation. Beast's stream starts a timer
// wait and a wrapping operation for every read and write; here setting a deadline is a clock
// read and a store, one timer per connection is re-armed only when it fires before the current
// deadline, and an operation is wrapped only to turn "cancelled by the deadline" into
// beast::error::timeout. As with Beast's stream, a deadline that passes while an operation is
// pending closes the socket and every pending operation completes with beast::error::timeout;
// one that passes with none pending fails the next operation.
// Not thread-safe: one event loop (the socket's executor) per connection.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core/error.hpp>
#include <memory>
#include <utility>

#include "greenlight/common/time_source.h"

namespace greenlight::proxy {

namespace timed_socket_detail {

struct State {
  State(boost::asio::ip::tcp::socket s, const TimeSource& t) : socket(std::move(s)), timer(socket.get_executor()), time(t) {}
  boost::asio::ip::tcp::socket socket;
  boost::asio::steady_timer timer;
  const TimeSource& time;
  MonoTime deadline = MonoTime::max();
  MonoTime armed_for = MonoTime::max();  // when the pending timer wait ends; max: none pending
  uint64_t generation = 0;               // of the pending wait: an older one's handler does nothing
  int pending = 0;                       // operations started and not completed
  bool expired = false;                  // the deadline passed while no operation was pending
  bool timed_out = false;                // the deadline closed the socket
};

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
  std::shared_ptr<State> state;
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
  using executor_type = boost::asio::any_io_executor;
  using lowest_layer_type = boost::asio::ip::tcp::socket;  // what asio::ssl::stream asks of its next layer

  TimedSocket(boost::asio::ip::tcp::socket socket, const TimeSource& time)
      : impl_(std::make_shared<Impl>(std::move(socket), time)) {}
  TimedSocket(const executor_type& ex, const TimeSource& time)
      : impl_(std::make_shared<Impl>(boost::asio::ip::tcp::socket(ex), time)) {}
  TimedSocket(TimedSocket&&) noexcept = default;
  TimedSocket& operator=(TimedSocket&&) = delete;
  TimedSocket(const TimedSocket&) = delete;
  ~TimedSocket() {
    if (!impl_) return;  // moved from
    boost::system::error_code ignored;
    impl_->deadline = MonoTime::max();
    impl_->timer.cancel();
    impl_->socket.close(ignored);
  }

  executor_type get_executor() noexcept { return impl_->socket.get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return impl_->socket; }
  lowest_layer_type& lowest_layer() { return impl_->socket; }

  // The operations started from now on must be done within `d`.
  void expires_after(Duration d) {
    Impl& i = *impl_;
    i.timed_out = i.expired = false;
    i.deadline = i.time.monotonicNow() + d;
    if (i.armed_for <= i.deadline) return;  // a wait ends no later: it looks again then
    arm(impl_);
  }
  void expires_never() {
    impl_->timed_out = impl_->expired = false;
    impl_->deadline = MonoTime::max();
  }
  void cancel() {
    boost::system::error_code ignored;
    impl_->socket.cancel(ignored);
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return initiate<void(boost::system::error_code, std::size_t)>(
        token, [](auto& s, const MutableBuffers& b, auto h) { s.async_read_some(b, std::move(h)); }, buffers);
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return initiate<void(boost::system::error_code, std::size_t)>(
        token, [](auto& s, const ConstBuffers& b, auto h) { s.async_write_some(b, std::move(h)); }, buffers);
  }
  template <class Token>
  auto async_connect(const boost::asio::ip::tcp::endpoint& to, Token&& token) {
    return initiate<void(boost::system::error_code)>(
        token, [](auto& s, const boost::asio::ip::tcp::endpoint& e, auto h) { s.async_connect(e, std::move(h)); }, to);
  }

 private:
  // Starts `op(socket, arg, handler)` with the handler wrapped. The argument is stored with the
  // operation (use_awaitable starts it later, at the co_await).
  template <class Signature, class Token, class Op, class Arg>
  auto initiate(Token& token, Op op, const Arg& arg) {
    return boost::asio::async_initiate<Token, Signature>(
        [this, op](auto handler, const Arg& a) {
          start();
          op(impl_->socket, a, Mapped<decltype(handler)>{std::move(handler), impl_});
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
    boost::system::error_code ignored;
    i.socket.close(ignored);
  }
  static void arm(const std::shared_ptr<Impl>& impl) {
    impl->armed_for = impl->deadline;
    const uint64_t generation = ++impl->generation;
    impl->timer.expires_at(impl->deadline);  // an earlier wait ends as cancelled
    impl->timer.async_wait([impl, generation](boost::system::error_code ec) {
      if (ec || generation != impl->generation) return;  // cancelled, or superseded by a newer wait
      impl->armed_for = MonoTime::max();
      if (impl->deadline == MonoTime::max()) return;
      if (impl->deadline > impl->time.monotonicNow()) {  // moved on since: wait for the new one
        arm(impl);
        return;
      }
      if (impl->pending > 0) {
        expire(*impl);
      } else {
        impl->expired = true;  // the next operation fails
      }
    });
  }

  std::shared_ptr<Impl> impl_;
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
