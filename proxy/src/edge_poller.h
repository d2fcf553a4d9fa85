// The data plane's own readiness tracking (private to the proxy module): an edge-triggered
// epoll set per event loop for the proxy's TCP connections, kept beside Asio's reactor.
//
// Why: Asio 1.74 reads speculatively before every wait and learns that a socket is drained only
// from a read that returns EAGAIN, so a proxied keep-alive exchange cost about 1.4 empty
// recvfrom calls (the next request is never there just after the answer; the upstream's answer
// is rarely there just after the request); asking Asio for a wait instead costs an epoll_ctl.
// Here a descriptor is registered once (EPOLLIN | EPOLLOUT | EPOLLRDHUP, edge-triggered) and a
// short read or write marks it not ready, so the next operation waits for the edge without a
// system call. HAProxy works the same way (2 recvfrom per proxied request, where we had 3.4).
//
// How it runs with Asio: `run(io)` is the loop's thread body: it collects this set's events
// (epoll_wait, timeout 0) and runs the completions they queue itself, lets Asio run its ready
// handlers once every few turns while this set stays busy (each io_context::poll is an
// epoll_wait on Asio's set too), and blocks in Asio only when neither had work, with a wait on
// this set's descriptor armed in Asio's epoll so either wakes it; before it blocks it yields
// the processor once and looks again. A context not driven by `run`
// (tests, tools) still works: parking an operation arms that wait, and the completions run
// from an Asio handler.
//
// Not thread-safe: a poller and its waiters belong to one event loop (its io_context's thread).
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/system/error_code.hpp>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "greenlight/common/time_source.h"

namespace greenlight::proxy {

class Waiter;
struct DeadlineList;

// An operation waiting for its direction to become ready again.
class ParkedOp {
 public:
  virtual ~ParkedOp() = default;
  // The direction is ready: tries again. True when done (its completion is then posted).
  virtual bool retry() = 0;
  // Ends it with `ec` (posted), e.g. operation_aborted when its socket closes.
  virtual void abort(boost::system::error_code ec) = 0;
};

enum class Direction { kRead = 0, kWrite = 1 };

// A deadline kept by a poller (a TimedSocket's): one Asio timer per event loop rather than one
// per connection, whose arming and cancelling took a mutex and a heap update each. Deadlines set
// with the same duration end in the order they were set, so the poller keeps a first-in,
// first-out list per duration and looks only at the list heads.
class DeadlineEntry {
 public:
  using Callback = void (*)(DeadlineEntry&);
  explicit DeadlineEntry(Callback on_expiry) : on_expiry_(on_expiry) {}
  DeadlineEntry(const DeadlineEntry&) = delete;
  DeadlineEntry& operator=(const DeadlineEntry&) = delete;
  bool pending() const { return list_ != nullptr; }

 private:
  friend class EdgePoller;
  Callback on_expiry_;  // called once the deadline has passed, with the entry out of its list
  MonoTime when_{};
  DeadlineEntry* prev_ = nullptr;
  DeadlineEntry* next_ = nullptr;
  DeadlineList* list_ = nullptr;
};

// A completion waiting in a poller's queue (see EdgePoller::defer).
class Deferred {
 public:
  virtual ~Deferred() = default;
  virtual void run() = 0;      // runs the completion; destroys this first
  virtual void discard() = 0;  // destroys this without running it

 private:
  friend class EdgePoller;
  Deferred* next_ = nullptr;
};

// A completion in a poller's queue: the handler and what it is called with.
template <class Handler, class... Args>
struct DeferredCall final : Deferred {
  DeferredCall(Handler&& h, Args... a) : handler(std::move(h)), args(a...) {}
  void run() override {
    Handler h = std::move(handler);
    std::tuple<Args...> a = std::move(args);
    delete this;
    std::apply([&h](Args... x) { std::move(h)(x...); }, a);
  }
  void discard() override { delete this; }
  Handler handler;
  std::tuple<Args...> args;
};

// A descriptor in a poller's set: its readiness as last learnt, and its parked operations (one
// per direction, as a stream has at most one read and one write in progress).
class Waiter {
 public:
  bool ready(Direction d) const { return ready_[static_cast<int>(d)]; }
  void markBlocked(Direction d) { ready_[static_cast<int>(d)] = false; }
  bool registered() const { return poller_ != nullptr; }
  class EdgePoller* poller() const { return poller_; }

 private:
  friend class EdgePoller;
  class EdgePoller* poller_ = nullptr;
  int fd_ = -1;
  bool ready_[2] = {true, true};
  std::unique_ptr<ParkedOp> op_[2];
  Waiter* prev_ = nullptr;  // in the poller's list of waiters with a parked operation
  Waiter* next_ = nullptr;
  bool listed_ = false;
};

template <class Handler>
class ParkedWait;

class EdgePoller : public boost::asio::execution_context::service {
 public:
  using key_type = EdgePoller;
  static boost::asio::execution_context::id id;

  explicit EdgePoller(boost::asio::io_context& io);
  ~EdgePoller() override;

  // The poller of the event loop `io` (created on first use).
  static EdgePoller& of(boost::asio::io_context& io);
  // Runs `io`'s event loop with this set's events until `io` is stopped (see the header comment).
  static void run(boost::asio::io_context& io);

  // Adds `fd` (non-blocking, connected or connecting) for `w`.
  bool add(Waiter& w, int fd, boost::system::error_code& ec);
  // Takes `w` out of the set, before its descriptor closes or goes to Asio; parked operations
  // end with operation_aborted.
  void remove(Waiter& w);
  // `op` waits until `w` is ready in direction `d`.
  void park(Waiter& w, Direction d, std::unique_ptr<ParkedOp> op);
  // As park, for a stream whose read and write may each wait for either direction (TLS: a read
  // may have to write first, a write to read): an operation already waiting for `d` stays, and
  // both are tried when `d` is ready.
  void parkBeside(Waiter& w, Direction d, std::unique_ptr<ParkedOp> op);
  // Ends `w`'s parked operations with `ec`.
  void abort(Waiter& w, boost::system::error_code ec);
  // `t`'s monotonic time, for deadlines set on this loop: inside run() read once per turn (a
  // turn lasts microseconds, at most a few milliseconds; the proxy's deadlines are seconds),
  // which saves a clock read per socket operation; outside run(), read at every call.
  MonoTime now(const TimeSource& t) {
    if (!running_) return t.monotonicNow();
    if (now_source_ != &t) {
      now_ = t.monotonicNow();
      now_source_ = &t;
    }
    return now_;
  }
  // `e` expires at `when` (set as the time `t` said plus `after`), replacing its earlier
  // deadline. Meant for a few distinct durations (configured timeouts: one list each), and
  // one time source for all of the loop's sockets.
  void setDeadline(DeadlineEntry& e, MonoTime when, Duration after, const TimeSource& t);
  // `e` has no deadline any more.
  void clearDeadline(DeadlineEntry& e);
  // Queues a socket operation's completion to run on this loop, after those queued before it.
  // Why not Asio's queue: Asio 1.74 polls its reactor (an epoll_wait) whenever its queue comes
  // round to the reactor's place, so a chain of completions each posted by the one before (read
  // done, write done, next read done …) cost an epoll_wait per link: about one per proxied
  // keep-alive request, where HAProxy makes 0.13. Here one Asio handler runs the whole chain.
  void defer(Deferred* d);
  // Completes `token` (signature void(error_code)) once `w`'s descriptor is readable again, which
  // the caller has just learnt it is not (accept4 said EAGAIN): a listener, registered with add.
  // Ends with operation_aborted when `w` is removed first. In the loop's own set, so a listener
  // costs neither Asio's re-arming epoll_ctl per wait nor a turn through Asio's queue.
  template <class Token>
  auto asyncWaitReadable(Waiter& w, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this, &w](auto handler) {
          using Op = ParkedWait<decltype(handler)>;
          w.markBlocked(Direction::kRead);
          park(w, Direction::kRead, std::make_unique<Op>(*this, std::move(handler)));
        },
        token);
  }
  // Completes `token` (signature void()) from this poller's queue, after the completions queued
  // before it: a loop's long-running coroutine lets the others have their turn.
  template <class Token>
  auto asyncYield(Token&& token) {
    return boost::asio::async_initiate<Token, void()>(
        [this](auto handler) { defer(new DeferredCall<decltype(handler)>(std::move(handler))); }, token);
  }

 private:
  void shutdown() override;
  size_t dispatch();  // collects ready events (up to kEventsPerDispatch) without waiting; returns how many
  void arm();
  void disarmIfIdle();
  void unlinkIfIdle(Waiter& w);
  size_t runDeferred();  // runs queued completions (up to a budget); returns how many
  void drain();          // runDeferred as an Asio handler (outside run())
  void postDrain();
  void unlinkDeadline(DeadlineEntry& e);
  void armTicker(MonoTime at);
  void onTicker();

  static constexpr size_t kDeferredPerTurn = 1024;
  static constexpr int kEventsPerDispatch = 64;
  // While this set keeps having work, run() lets Asio look at its own set once in this many turns.
  static constexpr int kTurnsPerAsioPoll = 4;

  static std::atomic<uint64_t> generation_;  // pollers destroyed so far (see of())
  int epfd_ = -1;
  std::optional<boost::asio::posix::stream_descriptor> wake_;  // epfd_ in Asio's epoll
  bool armed_ = false;     // a wait on wake_ is pending
  bool running_ = false;   // driven by run()
  const TimeSource* now_source_ = nullptr;  // whose time now_ is; null: read again
  MonoTime now_;
  bool woken_ = false;     // the wait on wake_ fired in run(): the set has events to collect
  bool shut_ = false;      // the io_context is shutting down: nothing more is posted
  Waiter* head_ = nullptr;
  size_t parked_ = 0;      // waiters in the list
  boost::asio::io_context& io_;
  std::vector<std::unique_ptr<DeadlineList>> deadline_lists_;  // one per duration in use
  size_t deadlines_ = 0;                       // entries in them
  std::optional<boost::asio::steady_timer> ticker_;  // wakes at the earliest list head
  MonoTime ticker_at_ = MonoTime::max();       // max: not armed
  const TimeSource* deadline_time_ = nullptr;  // the deadlines' time source
  Deferred* deferred_head_ = nullptr;  // completions to run, oldest first
  Deferred* deferred_tail_ = nullptr;
  bool drain_posted_ = false;  // a drain() is queued in Asio or running
};

// A wait for readiness alone (asyncWaitReadable): done as soon as the direction is ready.
template <class Handler>
class ParkedWait final : public ParkedOp {
 public:
  ParkedWait(EdgePoller& p, Handler&& h) : poller_(p), handler_(std::move(h)) {}
  bool retry() override {
    abort({});
    return true;
  }
  void abort(boost::system::error_code ec) override {
    poller_.defer(new DeferredCall<Handler, boost::system::error_code>(std::move(handler_), ec));
  }

 private:
  EdgePoller& poller_;
  Handler handler_;
};

}  // namespace greenlight::proxy
