#include "edge_poller.h"

#include <sys/epoll.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace greenlight::proxy {

namespace asio = boost::asio;

asio::execution_context::id EdgePoller::id;

EdgePoller::EdgePoller(asio::io_context& io) : asio::execution_context::service(io), io_(io) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) std::abort();  // out of descriptors at start-up: nothing sensible to do
  // Creating the descriptor here also creates Asio's reactor first, so this service is shut
  // down (and destroyed) before it. A duplicate: Asio closes what it is given.
  wake_.emplace(io.get_executor(), ::dup(epfd_));
  ticker_.emplace(io);
}

struct DeadlineList {
  Duration after{};
  DeadlineEntry* head = nullptr;
  DeadlineEntry* tail = nullptr;
};

std::atomic<uint64_t> EdgePoller::generation_{0};

EdgePoller::~EdgePoller() {
  ::close(epfd_);
  generation_.fetch_add(1, std::memory_order_release);  // before the memory can be reused
}

EdgePoller& EdgePoller::of(asio::io_context& io) {
  // Asked once per socket, so remembered per thread: Asio's lookup takes the service registry's
  // mutex and walks its list. A poller destroyed since (its context gone, and perhaps another
  // made at the same address) changes the generation, which voids every thread's memory.
  thread_local asio::io_context* cached_io = nullptr;
  thread_local EdgePoller* cached = nullptr;
  thread_local uint64_t cached_generation = 0;
  const uint64_t generation = generation_.load(std::memory_order_acquire);
  if (cached_io != &io || cached_generation != generation) {
    cached = &asio::use_service<EdgePoller>(io);
    cached_io = &io;
    cached_generation = generation;
  }
  return *cached;
}

void EdgePoller::run(asio::io_context& io) {
  EdgePoller& p = asio::use_service<EdgePoller>(io);
  p.running_ = true;
  int busy_turns = 0;
  bool yielded = false;  // since this loop last had work
  while (!io.stopped()) {
    // This set's events and the completions they queue, run here rather than through Asio's
    // queue: Asio's poll() looks at its own epoll set (an epoll_wait) each time it comes round,
    // and its set (timers, the runtime socket) rarely has anything while this one is busy.
    p.now_source_ = nullptr;
    size_t mine = p.runDeferred();
    if (p.parked_ > 0 || p.woken_) {
      p.woken_ = false;
      mine += p.dispatch();
    }
    mine += p.runDeferred();
    if (mine > 0) yielded = false;
    if (mine > 0 && ++busy_turns < kTurnsPerAsioPoll) continue;
    busy_turns = 0;
    // About to block unless Asio has work: arm the wait on this set before Asio looks at its
    // own, because Asio forgets a wake-up that no wait was armed for (one between this turn's
    // look at this set and Asio's epoll_wait would be lost, and the loop would sleep).
    if (mine == 0 && p.parked_ > 0 && !p.armed_) p.arm();
    p.now_source_ = nullptr;
    const size_t theirs = io.poll();
    if (mine == 0 && theirs == 0 && !p.deferred_head_ && !io.stopped()) {
      // Nothing to do: before sleeping, give the processor once to whatever else is runnable
      // on it (on a shared host: the clients, the upstreams), then look again. Events that
      // arrive meanwhile find this thread runnable, so nobody pays to wake it: the sender's
      // wake-up (an interprocessor interrupt, costly in a VM) and this thread's sleep and
      // re-arm (Asio re-arms the wait on this set with an epoll_ctl) happen less often.
      // With the processor to itself, sched_yield returns at once and costs one turn.
      if (!yielded) {
        yielded = true;
        ::sched_yield();
        continue;
      }
      yielded = false;
      p.now_source_ = nullptr;  // time passes while it waits
      io.run_one();
    }
  }
  p.running_ = false;
  p.disarmIfIdle();
  // Left over when the loop was stopped: they run if the context runs again.
  if (p.deferred_head_ && !p.shut_ && !p.drain_posted_) p.postDrain();
}

bool EdgePoller::add(Waiter& w, int fd, boost::system::error_code& ec) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &w;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    ec.assign(errno, boost::system::system_category());
    return false;
  }
  w.poller_ = this;
  w.fd_ = fd;
  return true;
}

void EdgePoller::remove(Waiter& w) {
  if (w.poller_ != this) return;
  abort(w, asio::error::operation_aborted);
  // Explicitly, even when the descriptor is about to close: the kernel drops a registration only
  // when the last descriptor of the socket closes, and a fork (a rollout's deploy command, in a
  // process that also runs the proxy) holds copies until its exec; an event for a waiter freed
  // meanwhile would be a use after free.
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, w.fd_, nullptr);
  w.poller_ = nullptr;
  w.fd_ = -1;
  w.ready_[0] = w.ready_[1] = true;
}

void EdgePoller::park(Waiter& w, Direction d, std::unique_ptr<ParkedOp> op) {
  auto& slot = w.op_[static_cast<int>(d)];
  if (slot) std::abort();  // two reads (or writes) at once on a stream: a bug
  slot = std::move(op);
  if (!w.listed_) {
    w.listed_ = true;
    w.prev_ = nullptr;
    w.next_ = head_;
    if (head_) head_->prev_ = &w;
    head_ = &w;
    ++parked_;
  }
  if (!running_ && !armed_) arm();
}

namespace {

// Two operations waiting for the same direction of one descriptor (parkBeside).
class ParkedPair final : public ParkedOp {
 public:
  ParkedPair(std::unique_ptr<ParkedOp> first, std::unique_ptr<ParkedOp> second) {
    ops_[0] = std::move(first);
    ops_[1] = std::move(second);
  }
  bool retry() override {
    for (auto& op : ops_) {
      if (op && op->retry()) op.reset();
    }
    return !ops_[0] && !ops_[1];
  }
  void abort(boost::system::error_code ec) override {
    for (auto& op : ops_) {
      if (auto o = std::move(op)) o->abort(ec);
    }
  }

 private:
  std::unique_ptr<ParkedOp> ops_[2];
};

}  // namespace

void EdgePoller::parkBeside(Waiter& w, Direction d, std::unique_ptr<ParkedOp> op) {
  auto& slot = w.op_[static_cast<int>(d)];
  if (slot) op = std::make_unique<ParkedPair>(std::move(slot), std::move(op));
  park(w, d, std::move(op));
}

void EdgePoller::abort(Waiter& w, boost::system::error_code ec) {
  for (auto& slot : w.op_) {
    auto op = std::move(slot);
    if (op && !shut_) op->abort(ec);
  }
  unlinkIfIdle(w);
  disarmIfIdle();
}

void EdgePoller::unlinkIfIdle(Waiter& w) {
  if (!w.listed_ || w.op_[0] || w.op_[1]) return;
  if (w.prev_) w.prev_->next_ = w.next_; else head_ = w.next_;
  if (w.next_) w.next_->prev_ = w.prev_;
  w.prev_ = w.next_ = nullptr;
  w.listed_ = false;
  --parked_;
}

size_t EdgePoller::dispatch() {
  epoll_event events[kEventsPerDispatch];
  const int n = ::epoll_wait(epfd_, events, kEventsPerDispatch, 0);
  for (int k = 0; k < n; ++k) {
    Waiter& w = *static_cast<Waiter*>(events[k].data.ptr);
    const uint32_t e = events[k].events;
    // A retry posts its completion (never runs it here), so no waiter closes during this loop.
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      w.ready_[0] = true;
      if (w.op_[0] && w.op_[0]->retry()) w.op_[0].reset();
    }
    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
      w.ready_[1] = true;
      if (w.op_[1] && w.op_[1]->retry()) w.op_[1].reset();
    }
    unlinkIfIdle(w);
  }
  return n > 0 ? static_cast<size_t>(n) : 0;
}

void EdgePoller::defer(Deferred* d) {
  if (shut_) {
    d->discard();
    return;
  }
  d->next_ = nullptr;
  if (deferred_tail_) deferred_tail_->next_ = d; else deferred_head_ = d;
  deferred_tail_ = d;
  if (!drain_posted_ && !running_) postDrain();  // run() runs the queue itself
}

void EdgePoller::postDrain() {
  drain_posted_ = true;
  asio::post(io_, [this] { drain(); });
}

size_t EdgePoller::runDeferred() {
  // Completions queued while this runs (the next step of a chain) run here too, up to a
  // budget, so Asio's other handlers (timers, accepts) still get their turn.
  size_t ran = 0;
  for (; deferred_head_ && ran < kDeferredPerTurn; ++ran) {
    Deferred* d = deferred_head_;
    deferred_head_ = d->next_;
    if (!deferred_head_) deferred_tail_ = nullptr;
    d->run();
  }
  return ran;
}

void EdgePoller::drain() {
  runDeferred();
  drain_posted_ = false;
  if (deferred_head_ && !shut_ && !running_) postDrain();
}

void EdgePoller::arm() {
  armed_ = true;
  wake_->async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
    armed_ = false;
    if (ec) return;
    if (running_) {  // run() looks at the set itself on its next turn
      woken_ = true;
      return;
    }
    // Until fewer than a full batch: events left in the set would wake no later wait.
    while (dispatch() == static_cast<size_t>(kEventsPerDispatch)) {
    }
    // Cancelled when nothing was parked; something may have been parked since.
    if (parked_ > 0) arm();
  });
}

void EdgePoller::disarmIfIdle() {
  // Outside run() a pending wait would keep io_context::run from returning once all is done.
  if (armed_ && parked_ == 0 && !running_ && !shut_) {
    boost::system::error_code ignored;
    wake_->cancel(ignored);
  }
}

void EdgePoller::setDeadline(DeadlineEntry& e, MonoTime when, Duration after, const TimeSource& t) {
  deadline_time_ = &t;
  if (e.list_) unlinkDeadline(e);
  DeadlineList* list = nullptr;
  for (auto& l : deadline_lists_) {
    if (l->after == after) {
      list = l.get();
      break;
    }
  }
  if (!list) {
    deadline_lists_.push_back(std::make_unique<DeadlineList>());
    list = deadline_lists_.back().get();
    list->after = after;
  }
  // Appended: the time only moves forwards, so a list stays in deadline order.
  e.when_ = when;
  e.list_ = list;
  e.prev_ = list->tail;
  e.next_ = nullptr;
  if (list->tail) list->tail->next_ = &e; else list->head = &e;
  list->tail = &e;
  ++deadlines_;
  if (when < ticker_at_) armTicker(when);
}

void EdgePoller::clearDeadline(DeadlineEntry& e) {
  if (!e.list_) return;
  unlinkDeadline(e);
  if (deadlines_ == 0 && ticker_at_ != MonoTime::max() && ticker_) {
    // Nothing left to wait for: a pending wait would keep io_context::run from returning.
    ticker_at_ = MonoTime::max();
    ticker_->cancel();
  }
}

void EdgePoller::unlinkDeadline(DeadlineEntry& e) {
  DeadlineList& l = *e.list_;
  if (e.prev_) e.prev_->next_ = e.next_; else l.head = e.next_;
  if (e.next_) e.next_->prev_ = e.prev_; else l.tail = e.prev_;
  e.prev_ = e.next_ = nullptr;
  e.list_ = nullptr;
  --deadlines_;
}

void EdgePoller::armTicker(MonoTime at) {
  if (!ticker_ || shut_) return;
  ticker_at_ = at;
  ticker_->expires_at(at);  // a wait pending for a later time ends as cancelled
  ticker_->async_wait([this](boost::system::error_code ec) {
    if (!ec) onTicker();
  });
}

void EdgePoller::onTicker() {
  // Also safe when a wait that completed just before a re-arm runs: it finds nothing due yet
  // and arms for the earliest head again.
  ticker_at_ = MonoTime::max();
  if (!deadline_time_) return;
  const MonoTime now = deadline_time_->monotonicNow();
  MonoTime next = MonoTime::max();
  for (auto& l : deadline_lists_) {
    while (l->head && l->head->when_ <= now) {
      DeadlineEntry& e = *l->head;
      unlinkDeadline(e);
      e.on_expiry_(e);  // closes a socket at most: queues completions, frees nothing here
    }
    if (l->head && l->head->when_ < next) next = l->head->when_;
  }
  if (next != MonoTime::max()) armTicker(next);
}

void EdgePoller::shutdown() {
  // The io_context is going away: parked operations are destroyed, not completed (as Asio does
  // with its own). Destroying one can close other sockets, which unlink themselves.
  shut_ = true;
  while (Deferred* d = deferred_head_) {
    deferred_head_ = d->next_;
    d->discard();  // may destroy sockets, which may queue nothing more (shut_)
  }
  deferred_tail_ = nullptr;
  while (Waiter* w = head_) {
    auto read = std::move(w->op_[0]);
    auto write = std::move(w->op_[1]);
    unlinkIfIdle(*w);
    read.reset();
    write.reset();
  }
  wake_.reset();  // while Asio's reactor is still there to let go of it
  ticker_.reset();
}

}  // namespace greenlight::proxy
