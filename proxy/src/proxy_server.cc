#include <utility>  // before Asio: its awaitable.hpp uses std::exchange

#include "greenlight/proxy/proxy_server.h"

#include "greenlight/proxy/listener_handover.h"

#include "greenlight/common/duration.h"
#include "greenlight/common/thread_memory.h"
#include "greenlight/common/tls.h"
#include "relay.h"
#include "access_log.h"
#include "request_id.h"
#include "request_rules.h"
#include "message_head.h"
#include "edge_poller.h"
#include "loop_balance.h"
#include "spare_pool.h"
#include "timed_socket.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/beast.hpp>
#include <algorithm>
#include <chrono>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

namespace greenlight::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Per-thread generator for the weighted pick: no lock on the request path.
double uniform01() {
  thread_local std::mt19937_64 gen(std::random_device{}());
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

// The upstream closed or reset the connection (as opposed to a timeout or a protocol error).
bool closedByPeer(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::eof;
}

// A client's address as text (X-Forwarded-For), once per connection. IPv4 by hand: inet_ntop,
// behind Asio's to_string, formats with sprintf, 1% of a Connection: close request's CPU.
std::string clientAddress(const tcp::endpoint& peer) {
  if (!peer.address().is_v4()) return peer.address().to_string();
  const auto bytes = peer.address().to_v4().to_bytes();
  char text[16];
  char* at = text;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i > 0) *at++ = '.';
    at = std::to_chars(at, text + sizeof text, bytes[i]).ptr;
  }
  return std::string(text, at);
}

// The scratch memory of a connection with a request in progress: the body buffer, the string
// message heads are written into and the buffer the client's bytes are read into (24 KiB or so).
// Each event loop keeps spare sets for its next requests: a session starts and ends on one loop,
// so no lock; with `Connection: close` clients this saves two large mallocs and frees per
// request. A keep-alive connection waiting for its next request holds none (RelayBuffer::release).
// Spares no request needed for a while are freed (Impl::releaseMemory).
struct alignas(64) ScratchPool {
  struct Scratch {
    std::unique_ptr<char[]> buf;
    std::string head;
    beast::flat_buffer in;
  };
  static constexpr size_t kSpare = 64;  // kept for the loop's next requests at most; more are freed
  SparePool<Scratch> spare{kSpare};
  prometheus::Gauge* allocated = nullptr;  // sets in use or spare, all loops together
};

class RelayBuffer {
 public:
  explicit RelayBuffer(ScratchPool& pool) : pool_(pool) { acquire(); }
  ~RelayBuffer() { release(); }
  // Gives the memory back to the loop's pool, for a connection that waits between requests with
  // nothing buffered (most of a keep-alive client's life); acquire() before using it again.
  void release() {
    if (!s_) return;
    s_->in.clear();  // keeps its memory
    if (s_->head.capacity() <= 4 * relay::kChunk && s_->in.capacity() <= 4 * relay::kChunk && pool_.spare.give(s_)) {
      return;
    }
    s_.reset();
    pool_.allocated->Decrement();
  }
  void acquire() {
    if (s_) return;
    s_ = pool_.spare.take();
    if (!s_) {
      s_ = std::make_unique<ScratchPool::Scratch>();
      s_->buf.reset(new char[relay::kChunk]);  // not zeroed: always written before it is read
      s_->head.reserve(1024);
      pool_.allocated->Increment();
    }
  }
  RelayBuffer(const RelayBuffer&) = delete;
  RelayBuffer& operator=(const RelayBuffer&) = delete;
  char* get() const { return s_->buf.get(); }
  std::string& head() const { return s_->head; }
  beast::flat_buffer& in() const { return s_->in; }
  // The id of the request in progress (proxy.request_id); empty when ids are off.
  beast::string_view requestId() const { return has_id_ ? beast::string_view(id_, kRequestIdLength) : beast::string_view(); }
  void newRequestId() {
    proxy::newRequestId(id_);
    has_id_ = true;
  }

 private:
  ScratchPool& pool_;
  std::unique_ptr<ScratchPool::Scratch> s_;
  char id_[kRequestIdLength];
  bool has_id_ = false;
};

int statusClass(unsigned status) { return std::clamp<int>(static_cast<int>(status) / 100, 1, 5); }

TlsFiles tlsFilesOf(const ListenerConfig& l) {
  return TlsFiles{l.tls_cert_file, l.tls_key_file, l.tls_client_ca_file, l.field.empty() ? "tls" : l.field + ".tls"};
}

}  // namespace

struct ProxyServer::Impl {
  struct UpstreamConn {
    UpstreamConn(const LoopExecutor& ex, const TimeSource& time) : stream(ex, time) {}
    TimedSocket stream;
    beast::flat_buffer buffer;
  };
  struct ServiceMetrics;
  struct Upstream;
  struct Health;
  // One endpoint's counters as one service's colour lists it: an address listed in two services
  // (or in both colours) counts each one's requests in its own series.
  struct EndpointMetrics {
    const ServiceMetrics* service = nullptr;
    Color color = Color::kBlue;
    prometheus::Counter* requests = nullptr;
    prometheus::Counter* errors = nullptr;
    prometheus::Counter* ejections = nullptr;
    prometheus::Gauge* ejected = nullptr;  // 1 while the address is ejected
    Health* health = nullptr;              // its active health check; null: the service has none
  };
  // The active health check of one endpoint as one service's colour lists it (that service's
  // health_check): run by its own coroutine on loop 0; routing reads `down`.
  struct Health {
    Health(const HealthCheck& c, std::string s, Color col, std::string a, Upstream& up)
        : check(c), service(std::move(s)), color(col), address(std::move(a)), upstream(up),
          request("GET " + c.path + " HTTP/1.1\r\nHost: " + (c.host.empty() ? address : c.host) +
                  "\r\nUser-Agent: greenlight-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n") {}
    const HealthCheck& check;
    const std::string service;
    const Color color;
    const std::string address;
    Upstream& upstream;
    const std::string request;
    std::atomic<bool> down{false};  // out of rotation: `fall` failed checks in a row, not yet `rise` passes
    prometheus::Gauge* healthy = nullptr;  // 0 while down
    prometheus::Counter* passed = nullptr;
    prometheus::Counter* failed = nullptr;
    // What show stats reports (read from the admin thread).
    mutable std::mutex mu;
    bool checked = false;
    std::string last;  // the last check's outcome: "200", "connect: Connection refused", "timed out after 2s"
    int passes = 0;    // in a row
    int failures = 0;  // in a row
  };
  struct Upstream {
    tcp::endpoint address;
    // Idle connections per event loop: a connection stays with the loop that opened it, and
    // idle[i] is touched only by loop i's thread, so no lock.
    std::vector<std::vector<std::unique_ptr<UpstreamConn>>> idle;
    // Per service and colour that lists the address (rarely more than one). The ejection is the
    // address's, so it is counted, and shown by the gauges, in all of them.
    boost::container::small_vector<EndpointMetrics, 1> listed;
    const EndpointMetrics& metricsFor(const ServiceMetrics& m, Color c) const {
      for (const EndpointMetrics& em : listed) {
        if (em.service == &m && em.color == c) return em;
      }
      return listed.front();  // not reached: every (service, colour) listing the address has one
    }
    std::atomic<int> consecutive_failures{0};
    std::atomic<int64_t> ejected_until{0};  // monotonic ns; 0: not ejected
    void showEjected(bool on) const {
      for (const EndpointMetrics& em : listed) em.ejected->Set(on ? 1 : 0);
    }
  };
  struct ColorMetrics {
    std::array<prometheus::Counter*, 6> by_class{};
    prometheus::Histogram* latency = nullptr;
  };
  struct ServiceMetrics {
    std::array<ColorMetrics, 2> color;
    std::array<ColorMetrics, 2> mirrored;        // copies sent to each colour by mirroring
    prometheus::Counter* mirror_skipped = nullptr;  // not sent: kMirrorsPerLoop copies in flight
    prometheus::Gauge* mirror_percent = nullptr;
    prometheus::Counter* retries = nullptr;
    prometheus::Counter* unavailable = nullptr;  // 503: no colour could serve
    prometheus::Counter* bad_requests = nullptr;
    prometheus::Gauge* active = nullptr;
    std::array<prometheus::Gauge*, 2> weight{};
    std::array<prometheus::Gauge*, 2> tunnels{};  // open Upgrade (WebSocket) tunnels per colour
    prometheus::Counter* drained = nullptr;       // tunnels closed because their colour went to 0
    prometheus::Counter* tls_failures = nullptr;  // TLS handshakes that failed
  };
  // An Upgrade (WebSocket) connection, from the 101 to its close. Lives on its session's
  // coroutine frame; touched only on its event loop, except membership in `tunnels`.
  struct Tunnel {
    std::string service;
    Color color;
    TimedSocket* client;
    TimedSocket* upstream;
    asio::steady_timer close_timer;
    bool armed = false;  // a drain close is scheduled
  };
  // A client connection, in its loop's list (touched only by that loop's thread).
  struct Session {
    TimedSocket* client = nullptr;
    bool idle = true;  // waiting for the next request
    Session* prev = nullptr;
    Session* next = nullptr;
  };

  ProxyConfig cfg;
  RoutingStore& store;
  std::shared_ptr<prometheus::Registry> registry;
  const TimeSource& time;
  std::unique_ptr<AccessLog> access_log;  // null: none (declared early: it outlives the loops)
  // One per event loop (declared before the loops: a session's frame destroyed with its loop
  // gives its memory back here).
  std::vector<ScratchPool> scratch_pools;
  // One event loop per thread; a client connection lives on one of them from accept to close,
  // so no strand or lock is needed on its path.
  std::vector<std::unique_ptr<asio::io_context>> loops;
  asio::io_context& io;  // loops[0]: listeners and the runtime socket
  std::vector<std::thread> threads;
  // Every event loop accepts on every listener (loop 0 on the socket itself, the others on a
  // duplicate of it): a connection is served by the loop that accepted it, with no hand-off
  // between threads. acceptor_of names the original socket, the one handed over on takeover.
  // A listening socket on one event loop, as a bare descriptor waited on in that loop's
  // EdgePoller: in Asio's set as well, every connection would also wake Asio's reactor, and
  // Asio's wait re-arms with an epoll_ctl each time and runs only when the loop next lets Asio
  // look at its own set.
  struct Listening {
    Listening(asio::io_context& l, int descriptor) : loop(l), fd(descriptor) {}
    Listening(const Listening&) = delete;
    Listening& operator=(const Listening&) = delete;
    ~Listening() { close(); }
    // On its loop's thread (or once the loops are gone). Out of the poller's set before the
    // descriptor closes (a duplicate on another loop keeps the socket, and so the
    // registration, alive); a waiting accept loop ends.
    void close() {
      if (room) room->cancel();  // a waiting accept loop sees the descriptor gone and ends
      room = nullptr;
      if (EdgePoller* p = ready.poller()) p->remove(ready);
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
    asio::io_context& loop;
    int fd;  // non-blocking
    Waiter ready;
    asio::steady_timer* room = nullptr;  // while its accept loop waits for a connection to close
  };
  std::vector<std::unique_ptr<Listening>> acceptors;
  std::map<std::string, size_t> acceptor_of;  // service -> index in acceptors
  std::map<std::string, int> ports;
  // TLS listeners: what each presents (replaceable while running). Contexts call back into it
  // only during handshakes, which end when the loops stop, before this Impl is destroyed.
  std::map<std::string, std::shared_ptr<ServerTls>> tls_of;  // by service
  std::unique_ptr<asio::local::stream_protocol::acceptor> runtime_acceptor;
  std::map<std::string, std::unique_ptr<Upstream>> upstreams;  // by "host:port"
  std::map<std::string, ServiceMetrics> metrics;
  std::deque<Health> health;  // one per checked endpoint listing; never moved (routing points into it)
  std::atomic<bool> stopping{false};
  // What each event loop keeps to itself on the request path (a cache line each: nothing one
  // loop writes there is read by another).
  struct alignas(64) LoopLocal {
    explicit LoopLocal(const RoutingStore& s) : table(s) {}
    RoutingStore::Reader table;
    uint64_t rr = 0;  // round-robin position over a colour's endpoints
    int mirrors = 0;  // mirrored copies in flight
  };
  std::vector<LoopLocal> local;
  // Open client sessions, per event loop: a list only the loop touches (stop() walks it from the
  // loop), and a count stop() reads from its own thread.
  struct alignas(64) LoopSessions {
    Session* head = nullptr;
    std::atomic<int> open{0};
    uint64_t ended = 0;  // sessions that ended on the loop, ever (read by releaseMemory, on the loop)
  };
  std::vector<LoopSessions> sessions;
  // Client connections each event loop holds, from accept to close (TLS handshakes included),
  // exported per thread. The loop that accepts a connection hands it to the loop holding the
  // fewest when it holds more than kBalanceSlack above that: every loop accepts on every
  // listener, and a burst of connections (a client's pool opening 64 at once) otherwise lands on
  // whichever loop woke first — measured under wrk: in some runs all 64 on one of two loops, the
  // other idle for as long as the connections lived.
  std::vector<prometheus::Gauge*> loop_connections;
  static constexpr double kBalanceSlack = 2;  // measured: 2 and 4 alike, 8 lost 9% with 64 connections
  // The connection limit (max_connections): client connections open on all loops together.
  // At the limit the accept loops stop taking connections, which wait in the kernel's listen
  // queue (as HAProxy's maxconn does) until one closes; the close wakes them.
  int max_connections = 1;
  std::atomic<int> waiting_acceptors{0};
  // Client connections open on all loops: the per-loop counts added up (a handful of loads,
  // asked once per accepted connection).
  int openConnections() const {
    double n = 0;
    for (const prometheus::Gauge* g : loop_connections) n += g->Value();
    return static_cast<int>(n);
  }
  static constexpr int64_t kNeverLogged = std::numeric_limits<int64_t>::min();
  std::atomic<int64_t> limit_logged_at{kNeverLogged};  // monotonic ns
  prometheus::Counter* limit_waits = nullptr;
  // One connection's place in its loop's count and in the limit: taken at accept, given back
  // when the connection's coroutine ends (or is destroyed unstarted, with its loop).
  class LoopShare {
   public:
    LoopShare(Impl& im, size_t loop) : im_(&im), g_(im.loop_connections[loop]) { g_->Increment(); }
    LoopShare(LoopShare&& o) noexcept : im_(std::exchange(o.im_, nullptr)), g_(o.g_) {}
    LoopShare& operator=(LoopShare&&) = delete;
    ~LoopShare() {
      if (!im_) return;
      // The gauge's change and the load below are sequentially consistent, as the accept loop's
      // side (waitForRoom): either it sees this close, or this sees it waiting.
      g_->Decrement();
      if (im_->waiting_acceptors.load() > 0 && !im_->stopping) im_->wakeAcceptors();
    }

   private:
    Impl* im_;
    prometheus::Gauge* g_;
  };
  int openSessions() const {
    int n = 0;
    for (const auto& l : sessions) n += l.open.load();
    return n;
  }
  std::mutex stop_mu;
  std::condition_variable sessions_cv;  // signalled when a session ends while stopping
  std::mutex tunnels_mu;
  std::set<Tunnel*> tunnels;
  std::function<void()> on_handed_over;
  std::atomic<bool> handed_over{false};  // the listeners (and the runtime socket path) now belong to a successor

  static std::vector<std::unique_ptr<asio::io_context>> makeLoops(int n) {
    if (n <= 0) n = std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 64);
    std::vector<std::unique_ptr<asio::io_context>> v;
    for (int i = 0; i < n; ++i) v.push_back(std::make_unique<asio::io_context>(1));
    return v;
  }
  Impl(const ProxyConfig& c, RoutingStore& s, std::shared_ptr<prometheus::Registry> r, const TimeSource& t)
      : cfg(c), store(s), registry(std::move(r)), time(t), loops(makeLoops(c.threads)), io(*loops[0]),
        local(loops.size(), LoopLocal(s)), sessions(loops.size()) {
    scratch_pools.resize(loops.size());
    const int allowed = defaultMaxConnections();
    max_connections = c.max_connections > 0 ? c.max_connections : allowed;
    if (c.max_connections > allowed) {
      spdlog::warn("proxy: max_connections {} is more than the open-file limit allows ({} connections): raise it "
                   "(ulimit -n, systemd LimitNOFILE) or connections may fail to open",
                   c.max_connections, allowed);
    }
  }

  void buildMetrics() {
    auto& requests = prometheus::BuildCounter().Name("greenlight_proxy_requests_total")
                         .Help("Requests answered, by service, colour and status class").Register(*registry);
    auto& latency = prometheus::BuildHistogram().Name("greenlight_proxy_upstream_duration_seconds")
                        .Help("Upstream exchange duration by service and colour").Register(*registry);
    auto& retries = prometheus::BuildCounter().Name("greenlight_proxy_retries_total")
                        .Help("Requests retried on another endpoint").Register(*registry);
    auto& unavailable = prometheus::BuildCounter().Name("greenlight_proxy_unavailable_total")
                            .Help("Requests answered 503: no colour could serve").Register(*registry);
    auto& bad = prometheus::BuildCounter().Name("greenlight_proxy_bad_requests_total")
                    .Help("Malformed or hostile requests refused with a 4xx").Register(*registry);
    auto& active = prometheus::BuildGauge().Name("greenlight_proxy_active_connections")
                       .Help("Open client connections").Register(*registry);
    auto& weight = prometheus::BuildGauge().Name("greenlight_proxy_weight")
                       .Help("Current weight of each colour (0-100)").Register(*registry);
    auto& ep_requests = prometheus::BuildCounter().Name("greenlight_proxy_endpoint_requests_total")
                            .Help("Requests sent to an upstream endpoint").Register(*registry);
    auto& ep_errors = prometheus::BuildCounter().Name("greenlight_proxy_endpoint_errors_total")
                          .Help("Connect or exchange failures of an upstream endpoint").Register(*registry);
    auto& ep_ejections = prometheus::BuildCounter().Name("greenlight_proxy_endpoint_ejections_total")
                             .Help("Times an endpoint was ejected by passive health").Register(*registry);
    auto& ep_ejected = prometheus::BuildGauge().Name("greenlight_proxy_endpoint_ejected")
                           .Help("1 while passive health keeps the endpoint out of rotation").Register(*registry);
    auto& ep_healthy = prometheus::BuildGauge().Name("greenlight_proxy_endpoint_healthy")
                           .Help("Active health checks: 1 while the endpoint passes (or is not yet checked), 0 while its "
                                 "failed checks keep it out of rotation")
                           .Register(*registry);
    auto& ep_checks = prometheus::BuildCounter().Name("greenlight_proxy_endpoint_health_checks_total")
                          .Help("Active health checks of an endpoint, by result (pass, fail)").Register(*registry);
    auto& mirrored = prometheus::BuildCounter().Name("greenlight_proxy_mirrored_requests_total")
                         .Help("Copies of requests sent to the colour at weight 0 (mirroring), by service, that colour and "
                               "the status class it answered (5xx also when the copy could not be delivered)")
                         .Register(*registry);
    auto& mirror_latency = prometheus::BuildHistogram().Name("greenlight_proxy_mirror_duration_seconds")
                               .Help("Mirrored exchange duration by service and the colour mirrored to").Register(*registry);
    auto& mirror_skipped = prometheus::BuildCounter().Name("greenlight_proxy_mirror_skipped_total")
                               .Help("Requests not mirrored because too many copies were already in flight").Register(*registry);
    auto& mirror_percent = prometheus::BuildGauge().Name("greenlight_proxy_mirror_percent")
                               .Help("Percentage of requests mirrored to the colour at weight 0 (0: off)").Register(*registry);
    auto& tunnel_gauge = prometheus::BuildGauge().Name("greenlight_proxy_upgraded_connections")
                             .Help("Open Upgrade (WebSocket) tunnels by service and colour").Register(*registry);
    auto& tls_failures = prometheus::BuildCounter().Name("greenlight_proxy_tls_handshake_failures_total")
                             .Help("Client TLS handshakes that failed (plain HTTP on a TLS port, old protocol, scanners)")
                             .Register(*registry);
    auto& drained = prometheus::BuildCounter().Name("greenlight_proxy_long_lived_drained_total")
                        .Help("Upgrade tunnels closed after their colour's weight went to 0 (after the grace period)")
                        .Register(*registry);
    auto& per_thread = prometheus::BuildGauge().Name("greenlight_proxy_thread_connections")
                           .Help("Client connections held by each event-loop thread (new ones go to the thread holding the fewest)")
                           .Register(*registry);
    for (size_t i = 0; i < loops.size(); ++i) loop_connections.push_back(&per_thread.Add({{"thread", std::to_string(i)}}));
    prometheus::Gauge& buffers =
        prometheus::BuildGauge().Name("greenlight_proxy_connection_buffers")
            .Help("Scratch buffers of about 24 KiB for client requests: held while a request is in progress, then kept "
                  "spare (up to 64 per event loop, freed when no request needs them for spare_buffer_release); a keep-alive "
                  "connection waiting for its next request holds none")
            .Register(*registry).Add({});
    for (ScratchPool& pool : scratch_pools) pool.allocated = &buffers;
    prometheus::BuildGauge().Name("greenlight_proxy_max_connections")
        .Help("Client connections the proxy holds at most (max_connections); more wait in the listen queue")
        .Register(*registry).Add({}).Set(max_connections);
    limit_waits = &prometheus::BuildCounter().Name("greenlight_proxy_connection_limit_waits_total")
                       .Help("Times an accept loop stopped taking connections at max_connections until one closed")
                       .Register(*registry).Add({});
    const prometheus::Histogram::BucketBoundaries bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                            0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    auto table = store.current();
    for (const auto& [name, s] : table->services) {
      ServiceMetrics& m = metrics[name];
      for (Color c : {Color::kBlue, Color::kGreen}) {
        ColorMetrics& cm = m.color[static_cast<int>(c)];
        for (int k = 1; k <= 5; ++k) {
          cm.by_class[k] = &requests.Add({{"service", name}, {"color", colorName(c)}, {"code", std::to_string(k) + "xx"}});
        }
        cm.latency = &latency.Add({{"service", name}, {"color", colorName(c)}}, bounds);
        ColorMetrics& mm = m.mirrored[static_cast<int>(c)];
        for (int k = 1; k <= 5; ++k) {
          mm.by_class[k] = &mirrored.Add({{"service", name}, {"color", colorName(c)}, {"code", std::to_string(k) + "xx"}});
        }
        mm.latency = &mirror_latency.Add({{"service", name}, {"color", colorName(c)}}, bounds);
        m.weight[static_cast<int>(c)] = &weight.Add({{"service", name}, {"color", colorName(c)}});
        m.tunnels[static_cast<int>(c)] = &tunnel_gauge.Add({{"service", name}, {"color", colorName(c)}});
        for (const auto& e : s.endpoints[static_cast<int>(c)]) {
          auto& up = upstreams[e.address];
          if (!up) {
            up = std::make_unique<Upstream>();
            up->idle.resize(loops.size());
          }
          const bool again = std::any_of(up->listed.begin(), up->listed.end(),
                                         [&](const EndpointMetrics& em) { return em.service == &m && em.color == c; });
          if (again) continue;  // listed twice in one colour: one set of series
          const prometheus::Labels labels{{"service", name}, {"color", colorName(c)}, {"endpoint", e.address}};
          Health* h = nullptr;
          if (auto check = cfg.health_checks.find(name); check != cfg.health_checks.end()) {
            h = &health.emplace_back(check->second, name, c, e.address, *up);
            h->healthy = &ep_healthy.Add(labels);
            h->healthy->Set(1);
            auto with = [&](const char* result) {
              prometheus::Labels l = labels;
              l["result"] = result;
              return &ep_checks.Add(l);
            };
            h->passed = with("pass");
            h->failed = with("fail");
          }
          up->listed.push_back({&m, c, &ep_requests.Add(labels), &ep_errors.Add(labels), &ep_ejections.Add(labels),
                                &ep_ejected.Add(labels), h});
        }
      }
      m.retries = &retries.Add({{"service", name}});
      m.mirror_skipped = &mirror_skipped.Add({{"service", name}});
      m.mirror_percent = &mirror_percent.Add({{"service", name}});
      m.unavailable = &unavailable.Add({{"service", name}});
      m.bad_requests = &bad.Add({{"service", name}});
      m.active = &active.Add({{"service", name}});
      m.drained = &drained.Add({{"service", name}});
      m.tls_failures = &tls_failures.Add({{"service", name}});
    }
    setWeights(*table);
  }

  void setWeights(const RoutingTable& t) {
    for (const auto& [name, s] : t.services) {
      auto it = metrics.find(name);
      if (it == metrics.end()) continue;
      it->second.weight[0]->Set(s.weight[0]);
      it->second.weight[1]->Set(s.weight[1]);
      it->second.mirror_percent->Set(s.mirror);
    }
  }

  void registerTunnel(Tunnel& t) {
    std::lock_guard<std::mutex> lock(tunnels_mu);
    tunnels.insert(&t);
    metrics.at(t.service).tunnels[static_cast<int>(t.color)]->Increment();
  }

  void unregisterTunnel(Tunnel& t) {
    std::lock_guard<std::mutex> lock(tunnels_mu);
    tunnels.erase(&t);
    metrics.at(t.service).tunnels[static_cast<int>(t.color)]->Decrement();
  }

  // After a routing change: tunnels to a colour now at weight 0 are closed after the grace
  // period, each at its own random moment within the spread (clients reconnect a few at a time,
  // to the new colour); a colour back above 0 before then keeps its tunnels.
  void drainTunnels() {
    std::lock_guard<std::mutex> lock(tunnels_mu);
    for (Tunnel* t : tunnels) {
      asio::post(t->client->get_executor(), [this, t] {
        {
          std::lock_guard<std::mutex> check(tunnels_mu);
          if (!tunnels.count(t)) return;  // closed meanwhile (same loop: it cannot close during this)
        }
        auto table = store.current();
        auto it = table->services.find(t->service);
        const bool drained_colour = it != table->services.end() && it->second.weight[static_cast<int>(t->color)] == 0;
        if (drained_colour && !t->armed) {
          t->armed = true;
          const auto delay = cfg.long_lived.grace + std::chrono::duration_cast<Duration>(cfg.long_lived.spread * uniform01());
          t->close_timer.expires_after(delay);
          t->close_timer.async_wait([this, t](boost::system::error_code ec) {
            if (ec) return;  // cancelled, or the tunnel is gone: `t` must not be touched
            metrics.at(t->service).drained->Increment();
            t->client->cancel();
            t->upstream->cancel();
          });
        } else if (!drained_colour && t->armed) {
          t->armed = false;
          t->close_timer.cancel();
        }
      });
    }
  }

  Status resolveUpstreams() {
    tcp::resolver resolver(io);
    for (auto& [address, up] : upstreams) {
      auto colon = address.rfind(':');
      boost::system::error_code ec;
      auto results = resolver.resolve(address.substr(0, colon), address.substr(colon + 1), ec);
      if (ec || results.empty()) return Unavailable("cannot resolve upstream " + address + ": " + ec.message());
      up->address = results.begin()->endpoint();
    }
    return Status::Ok();
  }

  int64_t nowNs() const { return time.monotonicNow().time_since_epoch().count(); }
  bool ejected(const Upstream& up) const { return up.ejected_until.load(std::memory_order_relaxed) > nowNs(); }

  // Passive health: consecutive failures eject an endpoint for a while; a success resets.
  void recordOutcome(Upstream& up, const std::string& address, bool failed) {
    if (!failed) {
      // Read first: a store on every request would pull the line away from the other loops.
      if (up.consecutive_failures.load(std::memory_order_relaxed) != 0) up.consecutive_failures.store(0, std::memory_order_relaxed);
      return;
    }
    const int threshold = cfg.passive_health.failures;
    if (threshold <= 0) return;
    if (up.consecutive_failures.fetch_add(1) + 1 >= threshold) {
      up.consecutive_failures = 0;
      up.ejected_until = nowNs() + cfg.passive_health.ejection.count();
      up.showEjected(true);
      for (const EndpointMetrics& em : up.listed) em.ejections->Increment();
      spdlog::warn("proxy: ejecting {} for {} s after {} consecutive failures", address,
                   toSeconds(cfg.passive_health.ejection), threshold);
    }
  }

  // On each event loop, every spare_buffer_release: the spare request buffers no request needed
  // since the last time are freed, and the memory the loop's thread freed goes back to the
  // system, also when many of its connections closed. The buffers a burst of requests left (up
  // to 64 sets of 24 KiB per loop, 3 MiB on two loops) and what a wave of closed connections
  // used (about 1.4 KiB each) no longer stay with a proxy whose traffic is back to its usual level:
  // jemalloc would purge them only as the loop allocates again.
  Task<void> releaseMemory(size_t loop) {
    static constexpr uint64_t kEndedForRelease = 256;  // connections closed since the last release
    asio::steady_timer tick(*loops[loop]);
    ScratchPool& pool = scratch_pools[loop];
    const uint64_t& ended = sessions[loop].ended;
    uint64_t ended_before = ended;
    while (!stopping) {
      tick.expires_after(cfg.spare_buffer_release);
      boost::system::error_code ec;
      co_await tick.async_wait(ecOut(ec));
      const size_t freed = pool.spare.trim();
      if (freed > 0) pool.allocated->Decrement(static_cast<double>(freed));
      if (freed > 0 || ended - ended_before >= kEndedForRelease) {
        releaseFreedMemory();
        ended_before = ended;
      }
    }
  }

  // Routing reads the ejection's end time and needs nothing more; this only tells the outside
  // that an ejection ended (the gauge back to 0, a log line), once a second, on loop 0.
  Task<void> ejectionSweep() {
    asio::steady_timer tick(io);
    while (!stopping) {
      tick.expires_after(std::chrono::seconds(1));
      boost::system::error_code ec;
      co_await tick.async_wait(ecOut(ec));
      const int64_t now = nowNs();
      for (auto& [address, up] : upstreams) {
        int64_t until = up->ejected_until.load();
        if (until == 0 || until > now) continue;
        // Gauge first: an ejection that comes between this and the exchange makes the exchange
        // fail, and the gauge is put back.
        up->showEjected(false);
        if (up->ejected_until.compare_exchange_strong(until, 0)) {
          spdlog::info("proxy: {} back in rotation: its ejection ended", address);
        } else {
          up->showEjected(true);
        }
      }
    }
  }

  // Active health checks: one endpoint's, every interval while the proxy runs (on loop 0). An
  // endpoint in maint is not checked (as HAProxy's maint); one draining is.
  Task<void> healthLoop(Health& h) {
    asio::steady_timer tick(io);
    // The first check at a random moment within the interval: endpoints are not all checked at once.
    Duration wait = std::chrono::duration_cast<Duration>(h.check.interval * uniform01());
    while (!stopping) {
      tick.expires_after(wait);
      boost::system::error_code ec;
      co_await tick.async_wait(ecOut(ec));
      if (stopping) break;
      wait = h.check.interval;
      if (inMaint(h)) continue;
      std::string outcome;
      const bool passed = co_await checkOnce(h, outcome);
      recordCheck(h, passed, std::move(outcome));
    }
  }

  bool inMaint(const Health& h) {
    auto table = store.current();
    auto svc = table->services.find(h.service);
    if (svc == table->services.end()) return false;
    for (const Endpoint& e : svc->second.endpoints[static_cast<int>(h.color)]) {
      if (e.address == h.address) return e.state == EndpointState::kMaint;
    }
    return false;
  }

  // One check: connect, `GET path`, read the answer's head, all within the check's timeout; a
  // connection of its own (never a pooled one: the check is of the endpoint, not of a connection).
  Task<bool> checkOnce(Health& h, std::string& outcome) {
    TimedSocket s(co_await asio::this_coro::executor, time);
    s.expires_after(h.check.timeout);
    boost::system::error_code ec;
    const char* step = "connect";
    co_await s.async_connect(h.upstream.address, ecOut(ec));
    if (!ec) {
      step = "send";
      co_await asio::async_write(s, asio::buffer(h.request), ecOut(ec));
    }
    ResponseParser p;
    if (!ec) {
      step = "answer";
      p.skip(true);  // the head says it all; the body is not read
      beast::flat_buffer buffer;
      co_await relay::readHeader(s, buffer, p, ec);
    }
    if (ec == beast::error::timeout) {
      outcome = "timed out after " + formatDuration(h.check.timeout);
      co_return false;
    }
    if (ec) {
      outcome = std::string(step) + ": " + ec.message();
      co_return false;
    }
    outcome = std::to_string(p.status());
    co_return p.status() >= 200 && p.status() < 400;
  }

  void recordCheck(Health& h, bool passed, std::string outcome) {
    (passed ? h.passed : h.failed)->Increment();
    int passes, failures;
    {
      std::lock_guard<std::mutex> lock(h.mu);
      h.checked = true;
      h.last = std::move(outcome);
      h.passes = passed ? h.passes + 1 : 0;
      h.failures = passed ? 0 : h.failures + 1;
      passes = h.passes;
      failures = h.failures;
    }
    const bool down = h.down.load();
    if (!down && failures >= h.check.fall) {
      h.down = true;
      h.healthy->Set(0);
      std::lock_guard<std::mutex> lock(h.mu);
      spdlog::warn("proxy: {} {} endpoint {} out of rotation: its health check failed {} time{} in a row (GET {}: {})",
                   h.service, colorName(h.color), h.address, failures, failures == 1 ? "" : "s", h.check.path, h.last);
    } else if (down && passes >= h.check.rise) {
      h.down = false;
      h.healthy->Set(1);
      spdlog::info("proxy: {} {} endpoint {} back in rotation: its health check passed {} time{} in a row", h.service,
                   colorName(h.color), h.address, passes, passes == 1 ? "" : "s");
    }
  }

  // What one request came to, for the metrics and the session loop.
  struct Outcome {
    unsigned status = 0;      // what the client was answered (0: nothing could be sent)
    bool keep_client = true;  // the client connection can carry another request
    // The endpoint that answered or failed last, if one was tried (in the routing table the
    // request was routed with, which the session holds until the request is logged).
    const Endpoint* endpoint = nullptr;
  };
  static Outcome via(Outcome o, const Endpoint* ep) {
    o.endpoint = ep;
    return o;
  }

  // A colour rarely has more than a few endpoints: no heap allocation per request for them.
  struct Candidate {
    const Endpoint* endpoint;
    Upstream* upstream;
    const EndpointMetrics* metrics;  // the endpoint's series for this service and colour
  };
  using Candidates = boost::container::small_vector<Candidate, 8>;

  // Ready endpoints of a colour in turn; ejected ones (or ones failing their health check) only
  // when none is ready (a likely failure beats a certain 503).
  Candidates candidates(const ServiceRoutes& svc, Color color, const ServiceMetrics& m) {
    Candidates ready, ejected_too;
    for (const auto& e : svc.endpoints[static_cast<int>(color)]) {
      if (e.state != EndpointState::kReady) continue;
      Upstream* up = upstreams.at(e.address).get();
      const EndpointMetrics& em = up->metricsFor(m, color);
      const bool out = ejected(*up) || (em.health && em.health->down.load(std::memory_order_relaxed));
      (out ? ejected_too : ready).push_back({&e, up, &em});
    }
    return ready.empty() ? ejected_too : ready;
  }

  std::unique_ptr<UpstreamConn> takeIdle(Upstream& up, size_t loop) {
    auto& idle = up.idle[loop];
    if (idle.empty()) return nullptr;
    auto conn = std::move(idle.back());
    idle.pop_back();
    return conn;
  }

  void giveBack(Upstream& up, size_t loop, std::unique_ptr<UpstreamConn> conn) {
    if (stopping) return;
    conn->stream.expires_never();
    auto& idle = up.idle[loop];
    if (idle.size() < cfg.max_idle_upstream_per_endpoint) idle.push_back(std::move(conn));
  }

  Task<std::unique_ptr<UpstreamConn>> connect(Upstream& up, boost::system::error_code& ec) {
    auto conn = std::make_unique<UpstreamConn>(co_await asio::this_coro::executor, time);
    conn->stream.expires_after(cfg.timeouts.connect);
    co_await conn->stream.async_connect(up.address, ecOut(ec));  // with TCP_NODELAY
    if (ec) co_return nullptr;
    co_return conn;
  }

  static http::response<http::string_body> errorResponse(http::status status, const std::string& why, unsigned version) {
    http::response<http::string_body> res{status, version};
    res.set(http::field::content_type, "text/plain");
    res.set(http::field::server, "greenlight");
    res.body() = std::string(http::obsolete_reason(status)) + ": " + why + "\n";
    return res;
  }

  // Answers the client ourselves (502/503/504/400 …); `keep`: the connection stays usable.
  // `scratch`: the connection's, which holds the request's id (sent back with the answer).
  Task<Outcome> answer(TimedSocket& client, const RelayBuffer& scratch, http::status status, const std::string& why,
                       unsigned version, bool keep) {
    auto res = errorResponse(status, why, version);
    if (const beast::string_view id = scratch.requestId(); !id.empty()) res.set(cfg.request_id_header, id);
    keep = keep && !stopping;
    res.keep_alive(keep);
    res.prepare_payload();
    client.expires_after(cfg.timeouts.request);
    if (!keep) client.lastWrite();  // the answer's end leaves with the FIN
    boost::system::error_code ec;
    co_await http::async_write(client, res, ecOut(ec));
    co_return Outcome{static_cast<unsigned>(status), keep && !ec};
  }

  // Relays an upstream response whose head has been read: hop-by-hop headers out, body
  // streamed through one buffer. The upstream connection goes back to the pool when the
  // exchange ended cleanly and the upstream keeps it alive.
  Task<Outcome> relayResponse(TimedSocket& client, Upstream& up, const EndpointMetrics& em, std::unique_ptr<UpstreamConn> conn, ResponseParser& p,
                              unsigned client_version, bool client_keep, size_t loop, RelayBuffer& scratch) {
    const unsigned status = p.status();
    bool upstream_keep = p.keep_alive();
    ResponseHeadOut how{client_version >= 11 ? 11u : 10u, client_keep && !stopping, false, cfg.request_id_header,
                        scratch.requestId()};
    if (p.need_eof()) {
      upstream_keep = false;  // the body ends when the upstream closes
      if (how.version >= 11) how.chunked = true; else how.keep = false;
    } else if (p.chunked()) {
      how.chunked = how.version >= 11;
      if (!how.chunked) how.keep = false;  // an HTTP/1.0 client reads the body up to the close
    }
    writeResponseHead(p, how, scratch.head());
    relay::Result result;
    if (!p.chunked() && !p.need_eof()) {
      // The common case, a known length: our head and the body as it comes, no re-framing.
      result = co_await relay::relaySized(conn->stream, conn->buffer, p, client, scratch.head(), scratch.get(), cfg.timeouts.request,
                                          nullptr, !how.keep);
    } else {
      result = co_await relay::relayUnsized(conn->stream, conn->buffer, p, client, scratch.head(), scratch.get(), how.chunked,
                                            cfg.timeouts.request);
    }
    if (result != relay::Result::kDone) {
      // Mid-body: the head is out, so no error answer is possible; closing tells the client.
      if (result == relay::Result::kSourceFailed) em.errors->Increment();
      co_return Outcome{status, false};
    }
    if (upstream_keep) giveBack(up, loop, std::move(conn));
    co_return Outcome{status, how.keep};
  }

  // The head of an Upgrade response was read: 101 opens a tunnel for the connection's life.
  Task<Outcome> openTunnel(TimedSocket& client, beast::flat_buffer& client_buffer, std::unique_ptr<UpstreamConn> conn, ResponseParser& p,
                           const std::string& service, Color color, RelayBuffer& scratch) {
    writeResponseHeadAsIs(p, scratch.head());
    client.expires_after(cfg.timeouts.request);
    boost::system::error_code ec;
    co_await asio::async_write(client, asio::buffer(scratch.head()), ecOut(ec));
    if (ec) co_return Outcome{101, false};
    Tunnel t{service, color, &client, &conn->stream, asio::steady_timer(client.get_executor())};
    registerTunnel(t);
    co_await relay::tunnel(client, client_buffer, conn->stream, conn->buffer);
    unregisterTunnel(t);
    co_return Outcome{101, false};
  }

  // Mirroring: a copy of a request without a body (its head as written for the upstream) goes to
  // an endpoint of the colour at weight 0; the answer is read to its end, measured and dropped.
  // The copy never touches the client's exchange: it runs beside it on the same event loop, and
  // when kMirrorsPerLoop copies are in flight (a slow idle release) further ones are skipped,
  // not queued.
  static constexpr int kMirrorsPerLoop = 64;
  void maybeMirror(const std::shared_ptr<const RoutingTable>& table, const ServiceRoutes& svc, Color live, bool head_only,
                   const std::string& request_head, ServiceMetrics& m, size_t loop) {
    const std::optional<Color> to = mirrorColor(svc, live, uniform01());
    if (!to || stopping) return;
    if (local[loop].mirrors >= kMirrorsPerLoop) {
      m.mirror_skipped->Increment();
      return;
    }
    ++local[loop].mirrors;
    asio::co_spawn(*loops[loop], mirror(table, svc, *to, head_only, request_head, m, loop), asio::detached);
  }

  // The table (first) holds `svc` for as long as the copy is in flight.
  Task<void> mirror(std::shared_ptr<const RoutingTable> /*holds svc*/, const ServiceRoutes& svc, Color color, bool head_only,
                    std::string request, ServiceMetrics& m, size_t loop) {
    const MonoTime started = time.monotonicNow();
    const unsigned status = co_await mirrorExchange(svc, color, head_only, request, m, loop);
    --local[loop].mirrors;
    ColorMetrics& mm = m.mirrored[static_cast<int>(color)];
    mm.latency->Observe(toSeconds(time.monotonicNow() - started));
    mm.by_class[statusClass(status)]->Increment();
  }

  // One mirrored exchange: the status the idle colour answered, or 502/503/504 as the client
  // would have been answered had it gone there.
  Task<unsigned> mirrorExchange(const ServiceRoutes& svc, Color color, bool head_only, const std::string& request,
                                ServiceMetrics& m, size_t loop) {
    const Candidates ready = candidates(svc, color, m);
    if (ready.empty()) co_return 503;
    const Candidate& pick = ready[local[loop].rr++ % ready.size()];
    Upstream& up = *pick.upstream;
    std::unique_ptr<UpstreamConn> conn = takeIdle(up, loop);
    bool reused = conn != nullptr;
    thread_local std::array<char, relay::kChunk> sink;  // bodies are read into it and forgotten
    for (;;) {
      boost::system::error_code ec;
      if (!conn) {
        conn = co_await connect(up, ec);
        if (ec) {
          recordOutcome(up, pick.endpoint->address, true);
          co_return ec == beast::error::timeout ? 504 : 502;
        }
      }
      conn->stream.expires_after(cfg.timeouts.request);
      co_await asio::async_write(conn->stream, asio::buffer(request), ecOut(ec));
      ResponseParser p;
      p.body_limit(std::numeric_limits<std::uint64_t>::max());
      if (head_only) p.skip(true);
      if (!ec) co_await relay::readHeader(conn->stream, conn->buffer, p, ec);
      if (!ec) co_await relay::discardBody(conn->stream, conn->buffer, p, sink.data(), sink.size(), ec);
      if (ec && reused && closedByPeer(ec) && !p.got_some()) {  // a pooled connection the upstream had closed
        conn.reset();
        reused = false;
        continue;
      }
      if (ec) {
        recordOutcome(up, pick.endpoint->address, true);
        co_return ec == beast::error::timeout ? 504 : 502;
      }
      recordOutcome(up, pick.endpoint->address, p.status() >= 500);
      if (p.keep_alive() && !p.need_eof()) giveBack(up, loop, std::move(conn));
      co_return p.status();
    }
  }

  // Sends a request read whole to an endpoint of `color` and relays the answer. A failed connect
  // is retried once on another endpoint; a stale pooled connection once on a fresh one; a reset
  // before any answer byte, for idempotent methods, on another endpoint.
  Task<Outcome> forwardBuffered(TimedSocket& client, beast::flat_buffer& client_buffer, const ServiceRoutes& svc,
                                Color color, http::verb method, const std::string& body, unsigned client_version,
                                bool client_keep, bool upgrade, ServiceMetrics& m, size_t loop, RelayBuffer& scratch) {
    const size_t head_size = scratch.head().size();  // the upstream head (writeRequestHead), body appended per try
    const Candidates ready = candidates(svc, color, m);
    if (ready.empty()) {
      co_return co_await answer(client, scratch, http::status::service_unavailable, "no ready endpoint", client_version,
                                client_keep);
    }
    const uint64_t start = local[loop].rr++;
    const bool idempotent = method == http::verb::get || method == http::verb::head || method == http::verb::options ||
                            method == http::verb::put || method == http::verb::delete_;
    std::string last_error = "upstream failed";
    bool timed_out = false;
    const Endpoint* tried = nullptr;
    for (size_t attempt = 0; attempt < std::min<size_t>(2, ready.size()); ++attempt) {
      const Candidate& pick = ready[(start + attempt) % ready.size()];
      const Endpoint& ep = *pick.endpoint;
      Upstream& up = *pick.upstream;
      const EndpointMetrics& em = *pick.metrics;
      tried = &ep;
      if (attempt > 0) m.retries->Increment();
      em.requests->Increment();
      std::unique_ptr<UpstreamConn> conn = upgrade ? nullptr : takeIdle(up, loop);
      bool reused = conn != nullptr;
      for (int fresh_try = 0; fresh_try < 2; ++fresh_try) {
        boost::system::error_code ec;
        if (!conn) {
          conn = co_await connect(up, ec);
          if (ec) {
            em.errors->Increment();
            recordOutcome(up, ep.address, true);
            last_error = "connect to " + ep.address + ": " + ec.message();
            timed_out = ec == beast::error::timeout;
            break;  // next endpoint
          }
          reused = false;
        }
        conn->stream.expires_after(cfg.timeouts.request);
        boost::system::error_code wec, rec;
        scratch.head().resize(head_size);  // head and body in one write
        if (body.size() <= relay::kCoalesce) {  // one buffer: send, not sendmsg
          scratch.head().append(body);
          co_await asio::async_write(conn->stream, asio::buffer(scratch.head()), ecOut(wec));
        } else {
          co_await asio::async_write(conn->stream, std::array<asio::const_buffer, 2>{asio::buffer(scratch.head()), asio::buffer(body)},
                                     ecOut(wec));
        }
        ResponseParser p;
        p.body_limit(std::numeric_limits<std::uint64_t>::max());  // streamed: no size limit
        if (method == http::verb::head) p.skip(true);
        if (!wec) co_await relay::readHeader(conn->stream, conn->buffer, p, rec);
        ec = wec ? wec : rec;
        if (!ec) {
          recordOutcome(up, ep.address, p.status() >= 500);
          if (upgrade && p.status() == 101) {
            co_return via(co_await openTunnel(client, client_buffer, std::move(conn), p, svc.name, color, scratch), &ep);
          }
          co_return via(co_await relayResponse(client, up, em, std::move(conn), p, client_version, client_keep && !upgrade, loop,
                                               scratch),
                        &ep);
        }
        conn.reset();
        // A pooled connection the upstream had closed: nothing was processed, try a new one.
        if (reused && closedByPeer(ec) && (idempotent || wec)) continue;
        em.errors->Increment();
        recordOutcome(up, ep.address, true);
        // Closed or reset before a single response byte (e.g. an upstream shutting down with our
        // connection in its backlog): an idempotent request can go to another endpoint.
        if (idempotent && closedByPeer(ec) && !p.got_some()) {
          last_error = ep.address + " closed the connection without an answer";
          break;  // next endpoint
        }
        if (ec == beast::error::timeout) {
          co_return via(co_await answer(client, scratch, http::status::gateway_timeout, "upstream " + ep.address + " timed out",
                                        client_version, client_keep), &ep);
        }
        co_return via(co_await answer(client, scratch, http::status::bad_gateway, "upstream " + ep.address + ": " + ec.message(),
                                      client_version, client_keep), &ep);
      }
    }
    co_return via(co_await answer(client, scratch, timed_out ? http::status::gateway_timeout : http::status::bad_gateway,
                                  last_error, client_version, client_keep),
                  tried);
  }

  // Streams a large or chunked request body to an endpoint of `color` as it arrives. Only the
  // connect can be retried (nothing of the body has been read yet); afterwards a failure is a
  // 502 and the client connection closes (its body may be half read).
  Task<Outcome> forwardStreamed(TimedSocket& client, beast::flat_buffer& client_buffer, const ServiceRoutes& svc,
                                Color color, RequestParser& req, bool chunked, ServiceMetrics& m, size_t loop,
                                RelayBuffer& scratch) {
    const unsigned client_version = req.version();
    const Candidates ready = candidates(svc, color, m);
    if (ready.empty()) {
      co_return co_await answer(client, scratch, http::status::service_unavailable, "no ready endpoint", client_version, false);
    }
    const uint64_t start = local[loop].rr++;
    std::unique_ptr<UpstreamConn> conn;
    Upstream* up = nullptr;
    const Endpoint* ep = nullptr;
    const EndpointMetrics* em = nullptr;
    std::string last_error = "upstream failed";
    for (size_t attempt = 0; attempt < std::min<size_t>(2, ready.size()) && !conn; ++attempt) {
      const Candidate& pick = ready[(start + attempt) % ready.size()];
      ep = pick.endpoint;
      up = pick.upstream;
      em = pick.metrics;
      if (attempt > 0) m.retries->Increment();
      em->requests->Increment();
      boost::system::error_code ec;
      conn = co_await connect(*up, ec);  // fresh: a stale pooled one could not be retried
      if (ec) {
        em->errors->Increment();
        recordOutcome(*up, ep->address, true);
        last_error = "connect to " + ep->address + ": " + ec.message();
      }
    }
    if (!conn) co_return via(co_await answer(client, scratch, http::status::bad_gateway, last_error, client_version, false), ep);
    // The head (writeRequestHead, in scratch.head()) goes out with the body's first piece.
    boost::system::error_code ec;
    const relay::Result sent =
        chunked ? co_await relay::relayUnsized(client, client_buffer, req, conn->stream, scratch.head(), scratch.get(), true,
                                               cfg.timeouts.request, &ec)
                : co_await relay::relaySized(client, client_buffer, req, conn->stream, scratch.head(), scratch.get(),
                                             cfg.timeouts.request, &ec);
    if (sent == relay::Result::kSourceFailed) {
      // The client's body broke off or was malformed (bad chunk, over the limit).
      m.bad_requests->Increment();
      co_return co_await answer(client, scratch, rules::statusFor(ec, false), "request body: " + ec.message(), client_version, false);
    }
    if (sent == relay::Result::kDestinationFailed) {
      em->errors->Increment();
      recordOutcome(*up, ep->address, true);
      co_return via(co_await answer(client, scratch, http::status::bad_gateway, "upstream " + ep->address + ": " + ec.message(),
                                    client_version, false),
                    ep);
    }
    ResponseParser p;
    p.body_limit(std::numeric_limits<std::uint64_t>::max());
    co_await relay::readHeader(conn->stream, conn->buffer, p, ec);
    if (ec) {
      em->errors->Increment();
      recordOutcome(*up, ep->address, true);
      const http::status status = ec == beast::error::timeout ? http::status::gateway_timeout : http::status::bad_gateway;
      co_return via(co_await answer(client, scratch, status, "upstream " + ep->address + ": " + ec.message(), client_version, false),
                    ep);
    }
    recordOutcome(*up, ep->address, p.status() >= 500);
    co_return via(co_await relayResponse(client, *up, *em, std::move(conn), p, client_version, req.keep_alive(), loop, scratch), ep);
  }

  // Reads until the request head is complete, so its raw bytes can be checked before Beast
  // parses them: Beast accepts obs-fold (a header continued on the next line, a smuggling
  // vector) and unfolds it silently; we refuse it.
  Task<void> readHead(TimedSocket& client, beast::flat_buffer& buffer, boost::system::error_code* ec) {
    for (;;) {
      std::string_view seen(static_cast<const char*>(buffer.data().data()), buffer.size());
      switch (rules::checkRawHead(seen, cfg.max_header_bytes)) {
        case rules::HeadCheck::kComplete: co_return;
        case rules::HeadCheck::kObsFold: *ec = http::error::bad_field; co_return;
        case rules::HeadCheck::kTooLarge: *ec = http::error::header_limit; co_return;
        case rules::HeadCheck::kIncomplete: break;
      }
      const size_t n = co_await client.async_read_some(buffer.prepare(8192), ecOut(*ec));
      if (*ec) co_return;
      buffer.commit(n);
    }
  }

  // The colour for a request: the preview header or cookie if it names one, else by weight —
  // at a point fixed by the affinity key if the service has one and the request carries it.
  std::optional<Color> colorFor(const ServiceRoutes& svc, const HeadFields& f, const std::string& client_ip) {
    std::optional<Color> preview;
    const HeadField* cookie = nullptr;
    if (!svc.preview_header.empty()) {
      if (const HeadField* h = findField(f, svc.preview_header)) preview = parseColor(std::string_view(h->value.data(), h->value.size()));
    }
    if (!preview && !svc.preview_cookie.empty()) {
      if ((cookie = findField(f, http::field::cookie))) {
        preview = previewFromCookie(std::string_view(cookie->value.data(), cookie->value.size()), svc.preview_cookie);
      }
    }
    if (preview || svc.affinity.key == AffinityKey::kNone) return pickColor(svc, uniform01(), preview);
    std::optional<std::string_view> key;
    switch (svc.affinity.key) {
      case AffinityKey::kHeader:
        if (const HeadField* h = findField(f, svc.affinity.name)) key = std::string_view(h->value.data(), h->value.size());
        break;
      case AffinityKey::kCookie:
        if (!cookie) cookie = findField(f, http::field::cookie);
        if (cookie) key = cookieValue(std::string_view(cookie->value.data(), cookie->value.size()), svc.affinity.name);
        break;
      case AffinityKey::kClientAddress: key = client_ip; break;
      case AffinityKey::kNone: break;
    }
    // An empty value is no key: every client sending one would share a colour.
    return pickColor(svc, key && !key->empty() ? affinityPoint(*key) : uniform01(), std::nullopt);
  }

  // What the access log says of a request (filled only when there is one).
  struct AccessRecord {
    MonoTime began{};
    std::string method;
    std::string path;  // redacted (redactPath)
    std::optional<Color> color;
    beast::string_view id;  // the request's id (proxy.request_id); empty: none
  };
  static constexpr size_t kLoggedTargetBytes = 1024;
  void logAccess(const std::string& service, const std::string& client, bool tls, const AccessRecord& r, unsigned status,
                 const Endpoint* ep = nullptr) {
    if (!access_log) return;
    // Built by hand into one reused buffer: a JSON object per line cost 5 µs per request.
    thread_local std::string line;
    line.clear();
    line += "{\"time\":\"";
    appendLogTime(line, time.wallNow());
    line += "\",\"service\":";
    appendJsonString(line, service);
    if (!client.empty()) {
      line += ",\"client\":";
      appendJsonString(line, client);
    }
    line += ",\"method\":";
    appendJsonString(line, r.method);
    line += ",\"path\":";
    appendJsonString(line, r.path);
    char num[32];
    line += ",\"status\":";
    line.append(num, std::to_chars(num, num + sizeof num, status).ptr);
    line += ",\"color\":";
    if (r.color) appendJsonString(line, colorName(*r.color)); else line += "null";
    line += ",\"endpoint\":";
    if (ep) appendJsonString(line, ep->address); else line += "null";
    line += ",\"duration_ms\":";
    const double ms = std::round(toSeconds(time.monotonicNow() - r.began) * 1e6) / 1e3;
    line.append(num, std::to_chars(num, num + sizeof num, ms, std::chars_format::fixed, 3).ptr);
    line += tls ? ",\"tls\":true" : ",\"tls\":false";
    if (!r.id.empty()) {
      line += ",\"request_id\":\"";  // 36 characters of hex and '-': nothing to escape
      line.append(r.id.data(), r.id.size());
      line += '"';
    }
    line += '}';
    access_log->add(line);
  }

  // What a session does after a request: go on with the connection or end it, with or without
  // the client's last request read to its end.
  struct Next {
    bool keep = true;
    bool unread = false;
  };
  // One request whose head readHead has buffered (or failed to, `ec`): parsed, answered or
  // forwarded, accounted for.
  Task<Next> exchange(TimedSocket& client, RelayBuffer& scratch, boost::system::error_code ec, const std::string& service,
                      const std::string& client_ip, const std::string& log_client, ServiceMetrics& m, size_t loop) {
    const bool tls = client.tls();
    beast::flat_buffer& buffer = scratch.in();
    RequestParser head;
    head.header_limit(static_cast<std::uint32_t>(cfg.max_header_bytes));
    head.body_limit(cfg.max_body_bytes);
    // Beast parses the head from the buffer. The bytes stay there until the head has been
    // written for the upstream (the fields are views of them).
    size_t head_bytes = 0;
    if (!ec) {
      head_bytes = head.put(buffer.data(), ec);
      if (ec == http::error::need_more) ec = http::error::partial_message;  // readHead saw the end of the head
    }
    if (!cfg.request_id_header.empty()) scratch.newRequestId();  // also for a request refused below
    // For the access log, what the request asked for (views into `buffer`, consumed below).
    AccessRecord record;
    if (access_log) {
      record.id = scratch.requestId();
      record.began = time.monotonicNow();
      record.method = std::string(head.methodString());
      const auto target = head.target();
      record.path = redactPath(std::string_view(target.data(), std::min(target.size(), kLoggedTargetBytes)));
    }
    const HeadField* expect = ec ? nullptr : findField(head.fields(), http::field::expect);
    if (expect && !beast::iequals(expect->value, "100-continue")) {
      m.bad_requests->Increment();
      const Outcome refused =
          co_await answer(client, scratch, http::status::expectation_failed, "only 100-continue is supported", 11, false);
      logAccess(service, log_client, tls, record, refused.status);
      co_return Next{false, !head.is_done()};
    }
    if (ec) {
      m.bad_requests->Increment();
      const Outcome refused = co_await answer(client, scratch, rules::statusFor(ec, false), ec.message(), 11, false);
      logAccess(service, log_client, tls, record, refused.status);
      co_return Next{false, true};
    }
    // The colour is picked from the head, before any body is read: one routing table version
    // for the whole request, and nothing read for a request that nothing can serve.
    auto table = local[loop].table.current();
    const ServiceRoutes& svc = table->services.at(service);
    const std::optional<Color> color = colorFor(svc, head.fields(), client_ip);
    if (!color) {
      m.unavailable->Increment();
      const Outcome refused = co_await answer(client, scratch, http::status::service_unavailable,
                                              "no colour of " + service + " can serve", head.version(), false);
      logAccess(service, log_client, tls, record, refused.status);
      co_return Next{false, !head.is_done()};
    }
    record.color = color;
    // Expect: 100-continue: the client waits for our go-ahead before sending the body; we
    // read the body ourselves, so we answer it and do not pass the expectation on.
    if (expect && !head.is_done()) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      client.expires_after(cfg.timeouts.request);
      co_await asio::async_write(client, asio::buffer(kContinue), ecOut(ec));
      if (ec) co_return Next{false, false};
    }
    // Bodies up to buffer_request_bytes are read whole (the request can then be retried
    // elsewhere); larger or chunked ones are streamed to the upstream as they arrive.
    const bool stream_body =
        !head.is_done() && (head.chunked() || !head.content_length() || *head.content_length() > cfg.buffer_request_bytes);
    // The head for the upstream first, while its views are valid (the buffer is read into
    // again for the body).
    const beast::string_view protocol = head.method() == http::verb::get ? upgradeOf(head.fields()) : beast::string_view();
    const bool upgrade = !protocol.empty();
    const RequestHeadOut how{client_ip, tls, protocol, stream_body && head.chunked(), head.content_length().value_or(0),
                             cfg.request_id_header, scratch.requestId()};
    writeRequestHead(head, how, scratch.head());
    buffer.consume(head_bytes);
    Outcome outcome;
    MonoTime started;
    if (!stream_body) {
      std::string body;  // a length up to buffer_request_bytes (none for most requests)
      if (!head.is_done()) {
        body.resize(static_cast<size_t>(*head.content_length()));
        head.setBodyBuffer(body.data(), body.size());
      }
      client.expires_after(cfg.timeouts.request);
      while (!head.is_done() && !ec) {
        if (buffer.size() == 0) {
          const size_t got = co_await client.async_read_some(buffer.prepare(relay::kChunk), ecOut(ec));
          if (ec == asio::error::eof) ec = http::error::partial_message;
          if (ec) break;
          buffer.commit(got);
        }
        relay::feed(head, buffer, ec);
      }
      if (ec) {
        m.bad_requests->Increment();
        const Outcome refused = co_await answer(client, scratch, rules::statusFor(ec, false), ec.message(), 11, false);
        logAccess(service, log_client, tls, record, refused.status);
        co_return Next{false, true};
      }
      // With no body read since the head, the exchange starts when the access log's record did.
      started = access_log && body.empty() ? record.began : time.monotonicNow();
      if (svc.mirror > 0 && body.empty() && !upgrade && (head.method() == http::verb::get || head.method() == http::verb::head)) {
        maybeMirror(table, svc, *color, head.method() == http::verb::head, scratch.head(), m, loop);
      }
      outcome = co_await forwardBuffered(client, buffer, svc, *color, head.method(), body, head.version(),
                                         head.keep_alive(), upgrade, m, loop, scratch);
    } else {
      started = access_log ? record.began : time.monotonicNow();
      outcome = co_await forwardStreamed(client, buffer, svc, *color, head, how.chunked, m, loop, scratch);
    }
    if (outcome.status != 0) {
      ColorMetrics& cm = m.color[static_cast<int>(*color)];
      if (outcome.status != 101) cm.latency->Observe(toSeconds(time.monotonicNow() - started));
      cm.by_class[statusClass(outcome.status)]->Increment();
      logAccess(service, log_client, tls, record, outcome.status, outcome.endpoint);
    }
    // Unless kept, a streamed body the upstream's failure cut short is left unread.
    co_return Next{outcome.keep_client, !outcome.keep_client && !head.is_done()};
  }

  // A client connection from its first request to its close: plain, or TLS (the accept loop
  // started TLS on the socket; the handshake is the session's first step, in this frame: a
  // coroutine around the session for the handshake would stay suspended, and held, as long as
  // the connection lives). The LoopShare is its place in the loop's count and in
  // max_connections, given back as it ends.
  Task<void> session(TimedSocket client, std::string service, const std::string client_ip, size_t loop, LoopShare /*held while it lives*/) {
    ServiceMetrics& m = metrics.at(service);
    if (client.tls()) {
      boost::system::error_code ec;
      client.expires_after(cfg.timeouts.header);
      co_await client.async_handshake(ecOut(ec));
      if (ec) {
        m.tls_failures->Increment();  // scanners, plain HTTP on the TLS port, old clients
        co_return;
      }
    }
    Session self;
    self.client = &client;
    LoopSessions& mine = sessions[loop];
    self.next = mine.head;
    if (mine.head) mine.head->prev = &self;
    mine.head = &self;
    mine.open.fetch_add(1);
    m.active->Increment();
    const std::string log_client = access_log ? clientForLog(client_ip, cfg.access_log.client) : std::string();
    boost::system::error_code ignored;
    RelayBuffer scratch(scratch_pools[loop]);  // bodies pass through here, one piece at a time; heads are written here
    bool first = true;
    bool unread = false;  // the connection ends with the client's last request not read to its end
    while (!stopping) {
      self.idle = true;
      boost::system::error_code ec;
      if (first) {
        client.expires_after(cfg.timeouts.header);
      } else {
        client.expires_after(cfg.timeouts.idle);
        // Between requests, with nothing of the next one read yet, a connection holds no
        // buffer: it waits for its next bytes with its scratch memory back in the loop's pool
        // (and, over TLS, with OpenSSL's record buffers freed: SSL_MODE_RELEASE_BUFFERS).
        if (scratch.in().size() == 0) {
          scratch.release();
          co_await client.async_wait_readable(ecOut(ec));
          if (ec) break;  // the idle timeout, or a stop that cancelled the wait
          scratch.acquire();
        }
      }
      beast::flat_buffer& buffer = scratch.in();  // what the client sent, not yet parsed
      co_await readHead(client, buffer, &ec);
      self.idle = false;
      first = false;
      if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
        break;
      }
      // The request's own state (its parsed head, access record, body) lives in exchange's frame,
      // only while the request does: a connection waiting for its next request holds a few hundred
      // bytes of coroutine frame, not the 2.4 KB a request needs.
      const Next next = co_await exchange(client, scratch, ec, service, client_ip, log_client, m, loop);
      if (!next.keep) {
        unread = next.unread;
        break;
      }
    }
    // Closing sends our FIN after what we wrote (after an answer that ends the connection, relayed
    // or our own, in its last packet: TimedSocket::lastWrite, whose close shuts down first). When
    // the client may still be sending (its request not read to the end) and the answer did not go
    // that way (a relay cut short), the FIN is sent first here: what we wrote and the end of our
    // side are then on their way before the close, which resets a connection with unread bytes.
    if (unread) client.shutdown(tcp::socket::shutdown_send, ignored);
    m.active->Decrement();
    if (self.prev) self.prev->next = self.next; else mine.head = self.next;
    if (self.next) self.next->prev = self.prev;
    mine.open.fetch_sub(1);
    ++mine.ended;
    if (stopping) {  // stop() waits for the last session (it sets `stopping` before it looks)
      std::lock_guard<std::mutex> lock(stop_mu);
      sessions_cv.notify_all();
    }
  }

  // Connections accepted before the accept loop lets the loop's other work run (a turn through
  // the loop's queue). One per turn cost that turn per connection.
  static constexpr int kAcceptsPerTurn = 4;
  Task<void> acceptLoop(Listening& listening, std::string service, size_t loop,
                        std::shared_ptr<SSL_CTX> tls) {
    // accept4 directly: the connection arrives non-blocking and unregistered (TimedSocket::adopt);
    // Asio's accept would register it with epoll and set it non-blocking with system calls of its
    // own. Every few connections the loop yields to the rest of its work; a connection goes to
    // another loop when this one holds more than its share (balancedLoop).
    EdgePoller& poller = EdgePoller::of(*loops[loop]);
    int in_a_row = 0;
    for (;;) {
      if (stopping || handed_over || listening.fd < 0) co_return;
      if (openConnections() >= max_connections) {
        co_await waitForRoom(listening, service, loop);
        continue;
      }
      tcp::endpoint peer;  // from accept itself: no getpeername per connection
      socklen_t len = static_cast<socklen_t>(peer.capacity());
      // A direct system call: glibc's accept4 is a thread-cancellation point (see TimedSocket).
      const int fd = static_cast<int>(::syscall(SYS_accept4, listening.fd, peer.data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (fd >= 0) {
        peer.resize(len);
        const size_t to = balancedLoop(loop, loops.size(), [this](size_t i) { return loop_connections[i]->Value(); },
                                       kBalanceSlack);  // usually this one
        // Owned by the coroutine from here: closed with it even if its loop stops before it runs.
        TimedSocket socket = TimedSocket::adopt(loops[to]->get_executor(), fd, time);
        // TLS starts here (no I/O: OpenSSL's state for the connection, which holds its own
        // reference to the context); the session does the handshake.
        if (tls && socket.startTls(tls.get())) {
          metrics.at(service).tls_failures->Increment();  // out of memory: the socket closes
        } else {
          asio::co_spawn(*loops[to], session(std::move(socket), service, clientAddress(peer), to, LoopShare(*this, to)),
                         asio::detached);
        }
        if (++in_a_row == kAcceptsPerTurn) {
          in_a_row = 0;
          co_await poller.asyncYield(kAwait);
        }
        continue;
      }
      const int err = errno;
      boost::system::error_code ec;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        in_a_row = 0;
        if (!listening.ready.registered() && !poller.add(listening.ready, listening.fd, ec)) {
          spdlog::error("proxy: cannot wait for connections on {}: {}", service, ec.message());
          co_return;
        }
        co_await poller.asyncWaitReadable(listening.ready, ecOut(ec));
        if (ec) co_return;  // closed (stop, hand-over)
        continue;
      }
      if (err == EINTR || err == ECONNABORTED) continue;
      if (err == EBADF || err == EINVAL) co_return;
      // Out of descriptors or memory: say so, and try again in a moment rather than spin.
      spdlog::warn("proxy: accept on {} failed: {}", service, std::strerror(err));
      asio::steady_timer pause(*loops[loop], std::chrono::milliseconds(100));
      co_await pause.async_wait(ecOut(ec));
    }
  }

  // At max_connections: waits until a connection closes (woken by its LoopShare), or the
  // listener closes. A wake-up that went astray costs at most a second: the wait re-checks.
  Task<void> waitForRoom(Listening& listening, const std::string& service, size_t loop) {
    waiting_acceptors.fetch_add(1);
    limit_waits->Increment();
    const int64_t now = nowNs();
    int64_t last = limit_logged_at.load();
    const bool due = last == kNeverLogged || now - last >= std::chrono::nanoseconds(std::chrono::seconds(10)).count();
    if (due && limit_logged_at.compare_exchange_strong(last, now)) {  // one line per 10 s, not per connection
      spdlog::warn("proxy: {} client connections open, max_connections: new connections to {} wait in the listen queue",
                   max_connections, service);
    }
    // Known to the listener, whose close() cancels the wait and forgets the timer: a coroutine
    // left waiting when the loops stop is destroyed with its loop, after the listeners.
    asio::steady_timer room(*loops[loop]);
    listening.room = &room;
    while (!stopping && !handed_over && listening.fd >= 0 && openConnections() >= max_connections) {
      room.expires_after(std::chrono::seconds(1));
      boost::system::error_code ec;
      co_await room.async_wait(ecOut(ec));
    }
    listening.room = nullptr;
    waiting_acceptors.fetch_sub(1);
  }

  // Called by a closing connection while accept loops wait for room: each is woken on its loop.
  void wakeAcceptors() {
    for (auto& a : acceptors) {
      asio::post(a->loop, [listening = a.get()] {
        if (listening->room) listening->room->cancel();
      });
    }
  }

  // Closes every acceptor on its own event loop (an acceptor is not to be touched from another).
  void closeAcceptors() {
    for (auto& a : acceptors) asio::post(a->loop, [listening = a.get()] { listening->close(); });
  }

  Task<void> runtimeSession(asio::local::stream_protocol::socket socket) {
    std::string who = "runtime-socket";
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      who = "runtime-socket uid " + std::to_string(cred.uid) + " pid " + std::to_string(cred.pid);
    }
    std::string input;
    boost::system::error_code ec;
    co_await asio::async_read_until(socket, asio::dynamic_buffer(input, 4096), '\n', ecOut(ec));
    if (ec && ec != asio::error::eof) co_return;
    std::string line = input.substr(0, input.find('\n'));
    if (line == "takeover") {
      handOver(socket.native_handle(), who);
      co_return;
    }
    CommandResult r = store.execute(line, who, [this] { return statsJson(); });
    co_await asio::async_write(socket, asio::buffer(r.output), ecOut(ec));
  }

  // A successor asked for the listeners: send them, stop accepting (the sockets, with the
  // connections queued on them, live on in the successor), and let the owner stop this proxy.
  void handOver(int unix_fd, const std::string& who) {
    std::vector<std::pair<std::string, int>> listeners;
    for (const auto& [service, index] : acceptor_of) listeners.emplace_back(service, acceptors[index]->fd);
    if (Status s = sendListeners(unix_fd, listeners); !s.ok()) {
      spdlog::error("proxy: takeover asked by {} failed: {}", who, s.message());
      return;
    }
    spdlog::warn("proxy: listeners handed over to a new proxy ({}); finishing requests in flight, then exiting", who);
    handed_over = true;
    closeAcceptors();
    if (on_handed_over) on_handed_over();
  }

  Task<void> runtimeLoop() {
    for (;;) {
      boost::system::error_code ec;
      auto socket = co_await runtime_acceptor->async_accept(ecOut(ec));
      if (ec) co_return;
      asio::co_spawn(io, runtimeSession(std::move(socket)), asio::detached);
    }
  }

  // Answers by status class and the latency histogram, cumulative as in /metrics, so the
  // controller can judge a latency quantile over an interval without a Prometheus.
  static nlohmann::json classesAndLatency(const ColorMetrics& cm) {
    nlohmann::json cj;
    for (int k = 1; k <= 5; ++k) cj[std::to_string(k) + "xx"] = static_cast<int64_t>(cm.by_class[k]->Value());
    const auto h = cm.latency->Collect().histogram;
    nlohmann::json le = nlohmann::json::array(), counts = nlohmann::json::array();
    for (const auto& b : h.bucket) {
      if (std::isfinite(b.upper_bound)) le.push_back(b.upper_bound);
      counts.push_back(static_cast<int64_t>(b.cumulative_count));
    }
    cj["latency"] = {{"le", le}, {"cumulative", counts}};
    return cj;
  }

  std::string statsJson() const {
    nlohmann::json out = nlohmann::json::object();
    const auto table = store.current();
    const int64_t now = nowNs();
    for (const auto& [name, m] : metrics) {
      nlohmann::json s;
      for (Color c : {Color::kBlue, Color::kGreen}) {
        nlohmann::json cj = classesAndLatency(m.color[static_cast<int>(c)]);
        cj["mirrored"] = classesAndLatency(m.mirrored[static_cast<int>(c)]);
        // Each endpoint as routing sees it now: its state and whether passive health has it out.
        nlohmann::json eps = nlohmann::json::array();
        auto svc = table->services.find(name);
        if (svc != table->services.end()) {
          for (const auto& e : svc->second.endpoints[static_cast<int>(c)]) {
            const Upstream& up = *upstreams.at(e.address);
            const EndpointMetrics& em = up.metricsFor(m, c);
            const int64_t left = up.ejected_until.load() - now;
            nlohmann::json ej = {{"address", e.address},
                           {"state", endpointStateName(e.state)},
                           {"requests", static_cast<int64_t>(em.requests->Value())},
                           {"errors", static_cast<int64_t>(em.errors->Value())},
                           {"ejections", static_cast<int64_t>(em.ejections->Value())},
                           {"ejected", left > 0},
                           {"ejected_seconds_left", left > 0 ? (left + 999'999'999) / 1'000'000'000 : int64_t{0}},
                           {"consecutive_failures", up.consecutive_failures.load()}};
            if (const Health* h = em.health) {
              std::lock_guard<std::mutex> lock(h->mu);
              ej["health"] = {{"state", !h->checked ? "unchecked" : h->down ? "down" : "up"},
                              {"last", h->last},
                              {"passes_in_a_row", h->passes},
                              {"failures_in_a_row", h->failures}};
            }
            eps.push_back(std::move(ej));
          }
        }
        cj["endpoints"] = eps;
        s[colorName(c)] = cj;
      }
      s["retries"] = static_cast<int64_t>(m.retries->Value());
      s["unavailable"] = static_cast<int64_t>(m.unavailable->Value());
      s["bad_requests"] = static_cast<int64_t>(m.bad_requests->Value());
      s["active_connections"] = static_cast<int64_t>(m.active->Value());
      out[name] = s;
    }
    return out.dump();
  }
};

ProxyServer::ProxyServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusOr<std::unique_ptr<ProxyServer>> ProxyServer::start(const ProxyConfig& config, RoutingStore& store,
                                                          std::shared_ptr<prometheus::Registry> registry,
                                                          const TimeSource& time, Handover handover) {
  auto impl = std::make_unique<Impl>(config, store, std::move(registry), time);
  Impl& im = *impl;
  im.on_handed_over = std::move(handover.on_handed_over);
  im.buildMetrics();
  if (Status s = im.resolveUpstreams(); !s.ok()) return s;
  spdlog::info("proxy: {} event loops, at most {} client connections{}", im.loops.size(), im.max_connections,
               config.max_connections > 0 ? "" : " (max_connections: from the open-file limit)");
  if (!config.access_log.path.empty()) {
    auto& dropped = prometheus::BuildCounter().Name("greenlight_proxy_access_log_dropped_total")
                        .Help("Access-log lines lost: the disk fell behind by more than the buffer, or a write failed")
                        .Register(*im.registry).Add({});
    auto log = AccessLog::open(config.access_log.path, &dropped);
    if (!log.ok()) return InvalidArgument("proxy.access_log.path: " + log.status().message());
    im.access_log = std::move(log.value());
    spdlog::info("proxy: access log {}", config.access_log.path);
  }
  store.onChange([p = &im](const RoutingTable& t) {
    p->setWeights(t);
    p->drainTunnels();
  });
  for (const auto& l : config.listeners) {
    boost::system::error_code ec;
    // Set up with Asio's acceptor, then released to a bare descriptor (see Impl::Listening).
    auto acceptor = std::make_unique<tcp::acceptor>(im.io);
    tcp::endpoint at(asio::ip::make_address(l.host, ec), l.port);
    if (ec) return InvalidArgument("proxy: bad listen address " + l.host);
    if (auto inherited = handover.inherited.find(l.service); inherited != handover.inherited.end()) {
      acceptor->assign(at.protocol(), inherited->second, ec);
      if (ec) return Unavailable("proxy: taking over the listener of " + l.service + ": " + ec.message());
      const auto bound = acceptor->local_endpoint(ec);
      if (ec || (l.port != 0 && bound.port() != l.port) || bound.address() != at.address()) {
        return InvalidArgument("proxy: service " + l.service + " listens on " + l.host + ":" + std::to_string(l.port) +
                               " but the running proxy's listener is " + bound.address().to_string() + ":" +
                               std::to_string(bound.port()) + ": change listen addresses with a full restart");
      }
    } else {
      acceptor->open(at.protocol(), ec);
      acceptor->set_option(asio::socket_base::reuse_address(true), ec);
      acceptor->bind(at, ec);
      if (ec) return Unavailable("proxy: cannot listen on " + l.host + ":" + std::to_string(l.port) + ": " + ec.message());
      acceptor->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) return Unavailable("proxy: cannot listen: " + ec.message());
    }
    // Accepted sockets inherit TCP_NODELAY from the listener (Linux copies it into each
    // connection): one system call here instead of one per connection.
    acceptor->set_option(tcp::no_delay(true), ec);
    if (ec) return Unavailable("proxy: cannot set TCP_NODELAY on the listener of " + l.service + ": " + ec.message());
    // Set either way: a listener taken over keeps the predecessor's setting otherwise.
    const int defer_seconds = config.defer_accept ? 1 : 0;
    if (::setsockopt(acceptor->native_handle(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds, sizeof defer_seconds) != 0) {
      return Unavailable("proxy: cannot set TCP_DEFER_ACCEPT on the listener of " + l.service + ": " + std::strerror(errno));
    }
    im.ports[l.service] = acceptor->local_endpoint().port();
    std::shared_ptr<SSL_CTX> tls;
    if (tlsFilesOf(l).any()) {
      auto identity = ServerTls::load(tlsFilesOf(l));
      if (!identity.ok()) return identity.status();
      tls.reset(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
      if (!tls) return Unavailable("proxy: cannot create a TLS context for " + l.service);
      identity.value()->apply(tls.get());
      spdlog::info("proxy: service {} certificate: {}", l.service, identity.value()->describe());
      im.tls_of[l.service] = std::move(identity.value());
    }
    acceptor->non_blocking(true, ec);
    if (ec) return Unavailable("proxy: cannot make the listener of " + l.service + " non-blocking: " + ec.message());
    const int fd = acceptor->release(ec);
    if (ec) return Unavailable("proxy: cannot take the listener of " + l.service + " from Asio: " + ec.message());
    const size_t first = im.acceptors.size();
    im.acceptor_of[l.service] = first;
    im.acceptors.push_back(std::make_unique<Impl::Listening>(im.io, fd));
    for (size_t i = 1; i < im.loops.size(); ++i) {
      const int copy = ::dup(fd);
      if (copy < 0) return Unavailable("proxy: cannot share the listener of " + l.service + ": " + std::strerror(errno));
      im.acceptors.push_back(std::make_unique<Impl::Listening>(*im.loops[i], copy));
    }
    for (size_t i = 0; i < im.loops.size(); ++i) {
      asio::co_spawn(*im.loops[i], im.acceptLoop(*im.acceptors[first + i], l.service, i, tls), asio::detached);
    }
    spdlog::info("proxy: service {} listening on {}://{}:{}", l.service, tls ? "https" : "http", l.host, im.ports[l.service]);
  }
  for (const auto& [service, fd] : handover.inherited) {
    if (!im.acceptor_of.count(service)) ::close(fd);  // a service no longer in the config
  }
  if (!config.runtime_socket.empty()) {
    ::unlink(config.runtime_socket.c_str());  // a stale socket of a previous run, or the predecessor's
    boost::system::error_code ec;
    im.runtime_acceptor = std::make_unique<asio::local::stream_protocol::acceptor>(im.io);
    asio::local::stream_protocol::endpoint at(config.runtime_socket);
    im.runtime_acceptor->open(at.protocol(), ec);
    im.runtime_acceptor->bind(at, ec);
    if (ec) return Unavailable("proxy: cannot bind runtime socket " + config.runtime_socket + ": " + ec.message());
    ::chmod(config.runtime_socket.c_str(), 0600);  // the runtime API changes traffic: owner only
    im.runtime_acceptor->listen(16, ec);
    asio::co_spawn(im.io, im.runtimeLoop(), asio::detached);
  }
  if (config.passive_health.failures > 0) asio::co_spawn(im.io, im.ejectionSweep(), asio::detached);
  for (size_t i = 0; i < im.loops.size(); ++i) asio::co_spawn(*im.loops[i], im.releaseMemory(i), asio::detached);
  for (Impl::Health& h : im.health) asio::co_spawn(im.io, im.healthLoop(h), asio::detached);
  for (auto& loop : im.loops) {
    im.threads.emplace_back([l = loop.get()] {
      auto guard = asio::make_work_guard(*l);
      EdgePoller::run(*l);
    });
  }
  return std::unique_ptr<ProxyServer>(new ProxyServer(std::move(impl)));
}

ProxyServer::~ProxyServer() { stop(std::chrono::seconds(0)); }

int ProxyServer::port(const std::string& service) const {
  auto it = impl_->ports.find(service);
  return it == impl_->ports.end() ? -1 : it->second;
}

std::string ProxyServer::statsJson() const { return impl_->statsJson(); }

Status ProxyServer::reopenAccessLog() {
  if (!impl_->access_log) return Status::Ok();
  return impl_->access_log->reopen();
}

Status ProxyServer::reloadTls(const std::vector<ListenerConfig>& listeners, bool check_only) {
  Impl& im = *impl_;
  std::vector<std::pair<ServerTls*, TlsFiles>> changes;
  for (const auto& l : listeners) {
    auto it = im.tls_of.find(l.service);
    const bool has = it != im.tls_of.end();
    if (!im.ports.count(l.service)) {
      return InvalidArgument("proxy: service " + l.service + " is new: new listeners need a restart (--takeover)");
    }
    if (tlsFilesOf(l).any() != has) {
      return InvalidArgument("proxy: " + (l.field.empty() ? l.service : l.field) + ".tls " + (has ? "removed" : "added") +
                             ": switching a listener between HTTP and HTTPS needs a restart (--takeover)");
    }
    if (!has) continue;
    auto trial = ServerTls::load(tlsFilesOf(l));  // every file read and checked before any change
    if (!trial.ok()) return trial.status();
    changes.emplace_back(it->second.get(), tlsFilesOf(l));
  }
  if (check_only) return Status::Ok();
  for (auto& [tls, files] : changes) {
    if (Status s = tls->reload(files); !s.ok()) return s;
    spdlog::info("proxy: {} certificate: {}", files.field, tls->describe());
  }
  return Status::Ok();
}

void ProxyServer::stop(Duration grace) {
  Impl& im = *impl_;
  if (im.threads.empty()) return;
  im.stopping = true;
  im.closeAcceptors();
  asio::post(im.io, [&im] {
    boost::system::error_code ec;
    if (im.runtime_acceptor) im.runtime_acceptor->close(ec);
  });
  // Idle keep-alive connections close now; busy ones after their response (a session that
  // becomes idle later sees `stopping` and ends).
  for (size_t i = 0; i < im.loops.size(); ++i) {
    asio::post(*im.loops[i], [&list = im.sessions[i]] {
      for (Impl::Session* s = list.head; s; s = s->next) {
        if (s->idle) s->client->cancel();
      }
    });
  }
  {
    // Tunnels have no request boundary to wait for: they close now.
    std::lock_guard<std::mutex> tl(im.tunnels_mu);
    for (Impl::Tunnel* t : im.tunnels) {
      asio::post(t->client->get_executor(), [&im, t] {
        std::lock_guard<std::mutex> check(im.tunnels_mu);
        if (!im.tunnels.count(t)) return;
        t->client->cancel();
        t->upstream->cancel();
      });
    }
  }
  {
    std::unique_lock<std::mutex> lock(im.stop_mu);
    im.sessions_cv.wait_for(lock, grace, [&im] { return im.openSessions() == 0; });
  }
  for (auto& loop : im.loops) loop->stop();
  for (auto& t : im.threads) t.join();
  im.threads.clear();
  // Idle upstream connections close now, not when the proxy is destroyed: an upstream that
  // finishes its kept-alive connections before it stops (cpp-httplib's servers: the demo's
  // simulator) would otherwise wait out its keep-alive timeout. The loops have stopped, so
  // their pools are this thread's to empty.
  for (auto& entry : im.upstreams) {
    for (auto& idle : entry.second->idle) idle.clear();
  }
  // After a hand-over the path is the successor's socket: leave it.
  if (!im.cfg.runtime_socket.empty() && !im.handed_over) ::unlink(im.cfg.runtime_socket.c_str());
}

}  // namespace greenlight::proxy
