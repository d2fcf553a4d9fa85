#include <utility>  // before Asio: its awaitable.hpp uses std::exchange

#include "greenlight/proxy/proxy_server.h"

#include "request_rules.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <chrono>
#include <condition_variable>
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
using asio::awaitable;
using asio::use_awaitable;
// Errors come back as values (Boost 1.74 has redirect_error, not as_tuple).
inline auto ecOut(boost::system::error_code& ec) { return asio::redirect_error(use_awaitable, ec); }

using rules::stripHopByHop;

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

int statusClass(unsigned status) { return std::clamp<int>(static_cast<int>(status) / 100, 1, 5); }

}  // namespace

struct ProxyServer::Impl {
  struct UpstreamConn {
    explicit UpstreamConn(asio::any_io_executor ex) : stream(ex) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
  };
  struct Upstream {
    tcp::endpoint address;
    std::mutex mu;
    // Idle connections per thread: a connection stays with the event loop that opened it.
    std::vector<std::vector<std::unique_ptr<UpstreamConn>>> idle;
    prometheus::Counter* requests = nullptr;
    prometheus::Counter* errors = nullptr;
    prometheus::Counter* ejections = nullptr;
    std::atomic<int> consecutive_failures{0};
    std::atomic<int64_t> ejected_until{0};  // monotonic ns; 0: not ejected
  };
  struct ColorMetrics {
    std::array<prometheus::Counter*, 6> by_class{};
    prometheus::Histogram* latency = nullptr;
  };
  struct ServiceMetrics {
    std::array<ColorMetrics, 2> color;
    prometheus::Counter* retries = nullptr;
    prometheus::Counter* unavailable = nullptr;  // 503: no colour could serve
    prometheus::Counter* bad_requests = nullptr;
    prometheus::Gauge* active = nullptr;
    std::array<prometheus::Gauge*, 2> weight{};
  };
  struct Session {
    beast::tcp_stream* client = nullptr;
    std::atomic<bool> idle{true};
  };

  ProxyConfig cfg;
  RoutingStore& store;
  std::shared_ptr<prometheus::Registry> registry;
  const TimeSource& time;
  // One event loop per thread; a client connection lives on one of them from accept to close,
  // so no strand or lock is needed on its path.
  std::vector<std::unique_ptr<asio::io_context>> loops;
  asio::io_context& io;  // loops[0]: listeners and the runtime socket
  std::atomic<size_t> next_loop{0};
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::map<std::string, int> ports;
  std::unique_ptr<asio::local::stream_protocol::acceptor> runtime_acceptor;
  std::map<std::string, std::unique_ptr<Upstream>> upstreams;  // by "host:port"
  std::map<std::string, ServiceMetrics> metrics;
  std::atomic<uint64_t> rr{0};
  std::atomic<bool> stopping{false};
  std::mutex sessions_mu;
  std::set<Session*> sessions;
  std::atomic<int> open_sessions{0};
  std::condition_variable sessions_cv;  // signalled when a session ends (graceful stop waits)

  static std::vector<std::unique_ptr<asio::io_context>> makeLoops(int n) {
    std::vector<std::unique_ptr<asio::io_context>> v;
    for (int i = 0; i < std::max(1, n); ++i) v.push_back(std::make_unique<asio::io_context>(1));
    return v;
  }
  Impl(const ProxyConfig& c, RoutingStore& s, std::shared_ptr<prometheus::Registry> r, const TimeSource& t)
      : cfg(c), store(s), registry(std::move(r)), time(t), loops(makeLoops(c.threads)), io(*loops[0]) {}

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
        m.weight[static_cast<int>(c)] = &weight.Add({{"service", name}, {"color", colorName(c)}});
        for (const auto& e : s.endpoints[static_cast<int>(c)]) {
          auto& up = upstreams[e.address];
          if (!up) {
            up = std::make_unique<Upstream>();
            up->idle.resize(loops.size());
          }
          up->requests = &ep_requests.Add({{"service", name}, {"color", colorName(c)}, {"endpoint", e.address}});
          up->errors = &ep_errors.Add({{"service", name}, {"color", colorName(c)}, {"endpoint", e.address}});
          up->ejections = &ep_ejections.Add({{"service", name}, {"color", colorName(c)}, {"endpoint", e.address}});
        }
      }
      m.retries = &retries.Add({{"service", name}});
      m.unavailable = &unavailable.Add({{"service", name}});
      m.bad_requests = &bad.Add({{"service", name}});
      m.active = &active.Add({{"service", name}});
    }
    setWeights(*table);
  }

  void setWeights(const RoutingTable& t) {
    for (const auto& [name, s] : t.services) {
      auto it = metrics.find(name);
      if (it == metrics.end()) continue;
      it->second.weight[0]->Set(s.weight[0]);
      it->second.weight[1]->Set(s.weight[1]);
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
      up.consecutive_failures.store(0, std::memory_order_relaxed);
      return;
    }
    const int threshold = cfg.passive_health.failures;
    if (threshold <= 0) return;
    if (up.consecutive_failures.fetch_add(1) + 1 >= threshold) {
      up.consecutive_failures = 0;
      up.ejected_until = nowNs() + cfg.passive_health.ejection.count();
      up.ejections->Increment();
      spdlog::warn("proxy: ejecting {} for {} s after {} consecutive failures", address,
                   toSeconds(cfg.passive_health.ejection), threshold);
    }
  }

  // Sends one request to an endpoint of `color`; retries a failed connect once on another
  // endpoint, and a stale pooled connection once on a fresh one.
  awaitable<http::response<http::string_body>> forward(const ServiceRoutes& svc, Color color,
                                                       http::request<http::string_body>& req,
                                                       ServiceMetrics& m, size_t loop) {
    std::vector<std::pair<const Endpoint*, Upstream*>> ready, ejected_too;
    for (const auto& e : svc.endpoints[static_cast<int>(color)]) {
      if (e.state != EndpointState::kReady) continue;
      Upstream* up = upstreams.at(e.address).get();
      (ejected(*up) ? ejected_too : ready).emplace_back(&e, up);
    }
    if (ready.empty()) ready = std::move(ejected_too);  // trying an ejected one beats a certain 503
    if (ready.empty()) co_return errorResponse(http::status::service_unavailable, "no ready endpoint", req);
    const uint64_t start = rr.fetch_add(1, std::memory_order_relaxed);
    const bool idempotent = req.method() == http::verb::get || req.method() == http::verb::head ||
                            req.method() == http::verb::options || req.method() == http::verb::put ||
                            req.method() == http::verb::delete_;
    std::string last_error = "upstream failed";
    bool timed_out = false;
    for (size_t attempt = 0; attempt < std::min<size_t>(2, ready.size()); ++attempt) {
      const Endpoint& ep = *ready[(start + attempt) % ready.size()].first;
      Upstream& up = *ready[(start + attempt) % ready.size()].second;
      if (attempt > 0) m.retries->Increment();
      up.requests->Increment();
      std::unique_ptr<UpstreamConn> conn;
      {
        std::lock_guard<std::mutex> lock(up.mu);
        auto& idle = up.idle[loop];
        if (!idle.empty()) {
          conn = std::move(idle.back());
          idle.pop_back();
        }
      }
      bool reused = conn != nullptr;
      for (int fresh_try = 0; fresh_try < 2; ++fresh_try) {
        if (!conn) {
          conn = std::make_unique<UpstreamConn>(co_await asio::this_coro::executor);
          conn->stream.expires_after(cfg.timeouts.connect);
          boost::system::error_code ec;
          co_await conn->stream.async_connect(up.address, ecOut(ec));
          if (ec) {
            up.errors->Increment();
            recordOutcome(up, ep.address, true);
            last_error = "connect to " + ep.address + ": " + ec.message();
            timed_out = ec == beast::error::timeout;
            conn.reset();
            break;  // next endpoint
          }
          conn->stream.socket().set_option(tcp::no_delay(true), ec);
          reused = false;
        }
        conn->stream.expires_after(cfg.timeouts.request);
        boost::system::error_code wec, rec;
        co_await http::async_write(conn->stream, req, ecOut(wec));
        http::response_parser<http::string_body> parser;
        parser.body_limit(cfg.max_body_bytes);
        if (!wec) co_await http::async_read(conn->stream, conn->buffer, parser, ecOut(rec));
        const auto ec = wec ? wec : rec;
        if (!ec) {
          auto res = parser.release();
          recordOutcome(up, ep.address, res.result_int() >= 500);
          const bool keep = res.keep_alive() && !stopping;
          if (keep) {
            conn->stream.expires_never();
            std::lock_guard<std::mutex> lock(up.mu);
            auto& idle = up.idle[loop];
            if (idle.size() < cfg.max_idle_upstream_per_endpoint) idle.push_back(std::move(conn));
          }
          co_return res;
        }
        conn.reset();
        // A pooled connection the upstream had closed: nothing was processed, try a new one.
        if (reused && closedByPeer(ec) && (idempotent || wec)) continue;
        up.errors->Increment();
        recordOutcome(up, ep.address, true);
        // Closed or reset before a single response byte (e.g. an upstream shutting down with our
        // connection in its backlog): an idempotent request can go to another endpoint.
        if (idempotent && closedByPeer(ec) && !parser.got_some()) {
          last_error = ep.address + " closed the connection without an answer";
          break;  // next endpoint
        }
        if (ec == beast::error::timeout) {
          co_return errorResponse(http::status::gateway_timeout, "upstream " + ep.address + " timed out", req);
        }
        co_return errorResponse(http::status::bad_gateway, "upstream " + ep.address + ": " + ec.message(), req);
      }
    }
    co_return errorResponse(timed_out ? http::status::gateway_timeout : http::status::bad_gateway, last_error, req);
  }

  static http::response<http::string_body> errorResponse(http::status status, const std::string& why,
                                                         const http::request<http::string_body>& req) {
    http::response<http::string_body> res{status, req.version()};
    res.set(http::field::content_type, "text/plain");
    res.set(http::field::server, "greenlight");
    res.body() = std::string(http::obsolete_reason(status)) + ": " + why + "\n";
    return res;
  }

  // Reads until the request head is complete, so its raw bytes can be checked before Beast
  // parses them: Beast accepts obs-fold (a header continued on the next line, a smuggling
  // vector) and unfolds it silently; we refuse it.
  awaitable<void> readHead(beast::tcp_stream& client, beast::flat_buffer& buffer, boost::system::error_code* ec) {
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

  awaitable<void> session(tcp::socket socket, std::string service, size_t loop) {
    beast::tcp_stream client(std::move(socket));
    Session self;
    self.client = &client;
    {
      std::lock_guard<std::mutex> lock(sessions_mu);
      sessions.insert(&self);
    }
    ++open_sessions;
    ServiceMetrics& m = metrics.at(service);
    m.active->Increment();
    boost::system::error_code ignored;
    const std::string client_ip = client.socket().remote_endpoint(ignored).address().to_string();
    beast::flat_buffer buffer;
    bool first = true;
    while (!stopping) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(cfg.max_header_bytes));
      parser.body_limit(cfg.max_body_bytes);
      client.expires_after(first ? cfg.timeouts.header : cfg.timeouts.idle);
      self.idle = true;
      boost::system::error_code ec;
      co_await readHead(client, buffer, &ec);
      if (!ec) co_await http::async_read_header(client, buffer, parser, ecOut(ec));
      self.idle = false;
      first = false;
      if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
        break;
      }
      if (!ec) {
        // Expect: 100-continue: the client waits for our go-ahead before sending the body; we
        // read the body ourselves, so we answer it and do not pass the expectation on.
        if (auto it = parser.get().find(http::field::expect); it != parser.get().end()) {
          if (!beast::iequals(it->value(), "100-continue")) {
            ec = http::error::bad_field;  // an expectation we cannot meet: 417 below
          } else if (!parser.is_done()) {
            static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            client.expires_after(cfg.timeouts.request);
            co_await asio::async_write(client, asio::buffer(kContinue), ecOut(ec));
          }
        }
      }
      if (!ec) {
        client.expires_after(cfg.timeouts.request);
        co_await http::async_read(client, buffer, parser, ecOut(ec));
      }
      if (ec) {
        m.bad_requests->Increment();
        const http::status status = rules::statusFor(
            ec, ec == http::error::bad_field && parser.is_header_done() &&
                    parser.get().find(http::field::expect) != parser.get().end());
        http::response<http::string_body> res{status, 11};
        res.set(http::field::content_type, "text/plain");
        res.set(http::field::connection, "close");
        res.body() = std::string(http::obsolete_reason(status)) + ": " + ec.message() + "\n";
        res.prepare_payload();
        client.expires_after(std::chrono::seconds(5));
        boost::system::error_code wec;
        co_await http::async_write(client, res, ecOut(wec));
        break;
      }
      auto req = parser.release();
      req.erase(http::field::expect);
      const bool client_keep_alive = req.keep_alive();
      const MonoTime started = time.monotonicNow();

      auto table = store.current();  // one consistent version for this request
      const ServiceRoutes& svc = table->services.at(service);
      std::optional<Color> preview;
      if (!svc.preview_header.empty()) {
        if (auto it = req.find(svc.preview_header); it != req.end()) preview = parseColor(std::string(it->value()));
      }
      if (!preview && !svc.preview_cookie.empty()) {
        if (auto it = req.find(http::field::cookie); it != req.end()) {
          preview = previewFromCookie(std::string_view(it->value().data(), it->value().size()), svc.preview_cookie);
        }
      }
      std::optional<Color> color = pickColor(svc, uniform01(), preview);

      rules::prepareForUpstream(req, client_ip);

      http::response<http::string_body> res;
      if (!color) {
        m.unavailable->Increment();
        res = errorResponse(http::status::service_unavailable, "no colour of " + service + " can serve", req);
      } else {
        res = co_await forward(svc, *color, req, m, loop);
        ColorMetrics& cm = m.color[static_cast<int>(*color)];
        cm.latency->Observe(toSeconds(time.monotonicNow() - started));
        cm.by_class[statusClass(res.result_int())]->Increment();
      }
      stripHopByHop(res);
      const bool keep = client_keep_alive && !stopping;
      res.keep_alive(keep);
      res.prepare_payload();
      client.expires_after(cfg.timeouts.request);
      boost::system::error_code wec;
      co_await http::async_write(client, res, ecOut(wec));
      if (wec || !keep) break;
    }
    client.socket().shutdown(tcp::socket::shutdown_send, ignored);
    m.active->Decrement();
    {
      std::lock_guard<std::mutex> lock(sessions_mu);
      sessions.erase(&self);
      --open_sessions;
    }
    sessions_cv.notify_all();
  }

  awaitable<void> acceptLoop(tcp::acceptor& acceptor, std::string service) {
    for (;;) {
      boost::system::error_code ec;
      const size_t loop = next_loop.fetch_add(1, std::memory_order_relaxed) % loops.size();
      tcp::socket socket = co_await acceptor.async_accept(*loops[loop], ecOut(ec));
      if (ec) {
        if (stopping || ec == asio::error::operation_aborted) co_return;
        spdlog::warn("proxy: accept on {} failed: {}", service, ec.message());
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(*loops[loop], session(std::move(socket), service, loop), asio::detached);
    }
  }

  awaitable<void> runtimeSession(asio::local::stream_protocol::socket socket) {
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
    CommandResult r = store.execute(line, who, [this] { return statsJson(); });
    co_await asio::async_write(socket, asio::buffer(r.output), ecOut(ec));
  }

  awaitable<void> runtimeLoop() {
    for (;;) {
      boost::system::error_code ec;
      auto socket = co_await runtime_acceptor->async_accept(ecOut(ec));
      if (ec) co_return;
      asio::co_spawn(io, runtimeSession(std::move(socket)), asio::detached);
    }
  }

  std::string statsJson() const {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [name, m] : metrics) {
      nlohmann::json s;
      for (Color c : {Color::kBlue, Color::kGreen}) {
        nlohmann::json cj;
        for (int k = 1; k <= 5; ++k) cj[std::to_string(k) + "xx"] = static_cast<int64_t>(m.color[static_cast<int>(c)].by_class[k]->Value());
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
                                                          const TimeSource& time) {
  auto impl = std::make_unique<Impl>(config, store, std::move(registry), time);
  Impl& im = *impl;
  im.buildMetrics();
  if (Status s = im.resolveUpstreams(); !s.ok()) return s;
  store.onChange([p = &im](const RoutingTable& t) { p->setWeights(t); });
  for (const auto& l : config.listeners) {
    boost::system::error_code ec;
    auto acceptor = std::make_unique<tcp::acceptor>(im.io);
    tcp::endpoint at(asio::ip::make_address(l.host, ec), l.port);
    if (ec) return InvalidArgument("proxy: bad listen address " + l.host);
    acceptor->open(at.protocol(), ec);
    acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    acceptor->bind(at, ec);
    if (ec) return Unavailable("proxy: cannot listen on " + l.host + ":" + std::to_string(l.port) + ": " + ec.message());
    acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Unavailable("proxy: cannot listen: " + ec.message());
    im.ports[l.service] = acceptor->local_endpoint().port();
    asio::co_spawn(im.io, im.acceptLoop(*acceptor, l.service), asio::detached);
    spdlog::info("proxy: service {} listening on {}:{}", l.service, l.host, im.ports[l.service]);
    im.acceptors.push_back(std::move(acceptor));
  }
  if (!config.runtime_socket.empty()) {
    ::unlink(config.runtime_socket.c_str());  // a stale socket of a previous run
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
  for (auto& loop : im.loops) {
    im.threads.emplace_back([l = loop.get()] {
      auto guard = asio::make_work_guard(*l);
      l->run();
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

void ProxyServer::stop(Duration grace) {
  Impl& im = *impl_;
  if (im.threads.empty()) return;
  im.stopping = true;
  asio::post(im.io, [&im] {
    boost::system::error_code ec;
    for (auto& a : im.acceptors) a->close(ec);
    if (im.runtime_acceptor) im.runtime_acceptor->close(ec);
  });
  // Idle keep-alive connections close now; busy ones after their response (a session that
  // becomes idle later sees `stopping` and ends).
  {
    std::unique_lock<std::mutex> lock(im.sessions_mu);
    for (Impl::Session* s : im.sessions) {
      if (!s->idle) continue;
      auto* client = s->client;
      asio::post(client->get_executor(), [client] { client->cancel(); });
    }
    im.sessions_cv.wait_for(lock, grace, [&im] { return im.open_sessions == 0; });
  }
  for (auto& loop : im.loops) loop->stop();
  for (auto& t : im.threads) t.join();
  im.threads.clear();
  if (!im.cfg.runtime_socket.empty()) ::unlink(im.cfg.runtime_socket.c_str());
}

}  // namespace greenlight::proxy
