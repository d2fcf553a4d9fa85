#include "greenlight/common/admin_server.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <prometheus/counter.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "greenlight/common/http_listen.h"

#include "greenlight/common/thread_memory.h"
#include "greenlight/common/tls.h"

namespace greenlight {

const char* roleName(Role r) {
  switch (r) {
    case Role::kNone: return "none";
    case Role::kViewer: return "viewer";
    case Role::kOperator: return "operator";
    case Role::kAdmin: return "admin";
  }
  return "none";
}

AdminResponse jsonResponse(int status, const std::string& json_body) {
  AdminResponse r;
  r.status = status;
  r.body = json_body;
  return r;
}

AdminResponse errorResponse(int status, const std::string& message) {
  // A message may quote what a client sent; bytes that are not UTF-8 become U+FFFD, not a throw.
  return jsonResponse(status, nlohmann::json{{"error", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

struct AdminServer::Impl {
  AdminServerOptions options;
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  std::atomic<bool> ready{false};
  std::atomic<bool> loop_done{true};
  std::mutex registries_mu;
  std::vector<std::shared_ptr<prometheus::Collectable>> registries;
  std::vector<std::shared_ptr<const ExpositionSource>> sources;
  std::shared_ptr<prometheus::Registry> own_registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>* requests = nullptr;
  prometheus::Counter* auth_failures = nullptr;
  prometheus::Counter* auth_throttled = nullptr;
  RealTimeSource real_time;
  std::unique_ptr<AuthThrottle> throttle;
  std::shared_ptr<ServerTls> tls;  // null: plain HTTP
  // What reload() may change while requests are served.
  mutable std::mutex live_mu;
  std::shared_ptr<const std::vector<AdminToken>> tokens;
  std::atomic<bool> public_metrics{false};

  std::shared_ptr<const std::vector<AdminToken>> currentTokens() const {
    std::lock_guard<std::mutex> lock(live_mu);
    return tokens;
  }

  // Resolves the caller's role; every token is compared so the time does not depend on which.
  Role authenticate(const httplib::Request& req, const std::vector<AdminToken>& tokens, std::string* principal) const {
    if (tokens.empty()) {
      *principal = "anonymous";
      return Role::kAdmin;
    }
    const std::string header = req.get_header_value("Authorization");
    static const std::string kBearer = "Bearer ";
    if (header.compare(0, kBearer.size(), kBearer) != 0) return Role::kNone;
    const std::string_view presented = std::string_view(header).substr(kBearer.size());
    Role role = Role::kNone;
    for (const auto& t : tokens) {
      if (constantTimeEqual(saltedSha256(t.salt, presented), t.digest) && role == Role::kNone) {
        role = t.role;
        *principal = t.name;
      }
    }
    return role;
  }

  void count(int code) { requests->Add({{"code", std::to_string(code)}}).Increment(); }

  void serve(const httplib::Request& req, httplib::Response& res, Role least,
             const AdminHandler& handler) {
    std::string principal;
    const auto tokens = currentTokens();
    if (least != Role::kNone && !tokens->empty()) {
      if (const Duration wait = throttle->blockedFor(req.remote_addr); wait > Duration::zero()) {
        // Locked out after too many wrong tokens: the token is not even looked at.
        auth_throttled->Increment();
        res.status = 429;
        res.set_header("Retry-After", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(wait).count() + 1));
        res.set_content(errorResponse(429, "too many failed authentications from this address; try again later").body,
                        "application/json");
        count(429);
        return;
      }
    }
    Role role = authenticate(req, *tokens, &principal);
    if (role == Role::kNone && least != Role::kNone) {
      auth_failures->Increment();
      // A wrong token is a guess; a missing one (a page not signed in yet) is not.
      if (req.has_header("Authorization") && throttle->recordFailure(req.remote_addr)) {
        spdlog::warn("admin API: {} locked out after {} wrong tokens within {} s", req.remote_addr,
                     options.auth_throttle.limit, toSeconds(options.auth_throttle.window));
      }
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content(errorResponse(401, "a valid bearer token is required").body,
                      "application/json");
      count(401);
      return;
    }
    if (static_cast<int>(role) < static_cast<int>(least)) {
      auth_failures->Increment();
      res.status = 403;
      res.set_content(errorResponse(403, std::string("this needs the ") + roleName(least) +
                                             " role; token \"" + principal + "\" has " +
                                             roleName(role))
                          .body,
                      "application/json");
      count(403);
      return;
    }
    AdminRequest ar;
    ar.method = req.method;
    ar.path = req.path;
    for (const auto& m : req.matches) ar.matches.push_back(m.str());
    for (const auto& p : req.params) ar.params.insert(p);
    ar.body = req.body;
    ar.principal = principal;
    ar.role = role;
    ar.client_certificate = peerCertificateSubject(req.ssl);
    AdminResponse out = handler(ar);
    res.status = out.status;
    res.set_header("X-Content-Type-Options", "nosniff");
    for (const auto& [name, value] : out.headers) res.set_header(name, value);
    if (out.stream) {
      res.set_chunked_content_provider(
          out.content_type, [stream = std::move(out.stream)](size_t, httplib::DataSink& sink) {
            std::string piece;
            const bool more = stream(piece);
            if (!piece.empty() && !sink.write(piece.data(), piece.size())) return false;
            if (!more) sink.done();
            return true;
          });
    } else {
      res.body = std::move(out.body);
      res.set_header("Content-Type", out.content_type);
    }
    count(out.status);
  }

  std::string metricsText() {
    std::vector<prometheus::MetricFamily> families;
    std::lock_guard<std::mutex> lock(registries_mu);
    for (const auto& r : registries) {
      auto f = r->Collect();
      families.insert(families.end(), std::make_move_iterator(f.begin()),
                      std::make_move_iterator(f.end()));
    }
    std::ostringstream serialized;
    prometheus::TextSerializer().Serialize(serialized, families);
    return serialized.str();
  }

  // The registries' text first, then each source piece by piece.
  AdminResponse metricsResponse() {
    struct State {
      std::string head;
      std::vector<std::shared_ptr<const ExpositionSource>> sources;
      size_t index = 0;
      std::unique_ptr<ExpositionSource::Cursor> cursor;
    };
    auto st = std::make_shared<State>();
    st->head = metricsText();
    {
      std::lock_guard<std::mutex> lock(registries_mu);
      st->sources = sources;
    }
    AdminResponse r{200, "text/plain; version=0.0.4; charset=utf-8", "", {}, nullptr};
    r.stream = [st](std::string& out) {
      if (!st->head.empty()) {
        out = std::move(st->head);
        st->head.clear();
        return true;
      }
      while (st->index < st->sources.size()) {
        const auto& src = *st->sources[st->index];
        if (!st->cursor) st->cursor = src.begin();
        if (src.next(*st->cursor, out, 64 << 10)) return true;
        st->cursor.reset();
        ++st->index;
        if (!out.empty()) return true;
      }
      return !out.empty();
    };
    return r;
  }
};

static bool isLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" ||
         host.rfind("127.", 0) == 0;
}

static TlsFiles tlsFilesOf(const AdminServerOptions& o) {
  return TlsFiles{o.tls_cert_file, o.tls_key_file, o.tls_client_ca_file, "admin.tls"};
}

StatusOr<std::unique_ptr<AdminServer>> AdminServer::create(AdminServerOptions options) {
  if (options.tokens.empty() && !isLoopback(options.host)) {
    return InvalidArgument("admin server on " + options.host +
                           " needs at least one token (only loopback may run without)");
  }
  auto impl = std::make_unique<Impl>();
  if (tlsFilesOf(options).any()) {
    auto tls = ServerTls::load(tlsFilesOf(options));
    if (!tls.ok()) return tls.status();
    impl->tls = std::move(tls.value());
    ServerTls* t = impl->tls.get();
    auto ssl = std::make_unique<httplib::SSLServer>([t](SSL_CTX& ctx) {
      t->apply(&ctx);
      return true;
    });
    if (!ssl->is_valid()) return InvalidArgument("admin.tls: cannot create a TLS context");
    impl->server = std::move(ssl);
  } else {
    impl->server = std::make_unique<httplib::Server>();
  }
  impl->tokens = std::make_shared<const std::vector<AdminToken>>(options.tokens);
  impl->public_metrics = options.public_metrics;
  impl->options = std::move(options);
  impl->requests = &prometheus::BuildCounter()
                        .Name("greenlight_admin_requests_total")
                        .Help("Admin API requests by response code")
                        .Register(*impl->own_registry);
  impl->auth_throttled = &prometheus::BuildCounter()
                              .Name("greenlight_admin_auth_throttled_total")
                              .Help("Admin API requests refused (429) because their address sent too many wrong tokens")
                              .Register(*impl->own_registry)
                              .Add({});
  impl->throttle = std::make_unique<AuthThrottle>(impl->options.time ? *impl->options.time : impl->real_time,
                                                  impl->options.auth_throttle);
  impl->auth_failures = &prometheus::BuildCounter()
                             .Name("greenlight_admin_auth_failures_total")
                             .Help("Admin API requests refused for a missing, wrong or weak token")
                             .Register(*impl->own_registry)
                             .Add({});
  impl->registries.push_back(impl->own_registry);
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

namespace {

// The admin API's workers: cpp-httplib's pool, each connection marking its worker cold first
// (markThreadCold). A worker serves a scrape or a command now and then; a cache of freed blocks
// per worker would be memory held for nothing, 64 times over.
class ColdThreadPool : public httplib::TaskQueue {
 public:
  explicit ColdThreadPool(size_t n) : pool_(n) {}
  void enqueue(std::function<void()> fn) override {
    pool_.enqueue([fn = std::move(fn)] {
      markThreadCold();
      fn();
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
};

}  // namespace

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  Impl* p = impl_.get();
  auto& s = *p->server;
  s.set_payload_max_length(1 << 20);
  // Each connection holds a worker while it is read or kept alive: enough workers that a few
  // dashboards and a handful of slow (or slowloris) clients cannot starve the API, and short
  // timeouts so such a client lets go soon. More than kWorkers slow clients at once can delay
  // other requests by up to the read timeout: keep the admin port off the open internet.
  constexpr size_t kWorkers = 64;
  s.new_task_queue = [] { return new ColdThreadPool(kWorkers); };
  s.set_read_timeout(5, 0);
  s.set_write_timeout(10, 0);
  // An idle kept-alive connection holds its worker, and a stop waits for it to end: cpp-httplib
  // checks for the stop only between requests. With 5 s, a status page open in a browser (it
  // polls every 2 s, so its connection never idled out) made every stop take 5 s more.
  s.set_keep_alive_timeout(1);
  s.set_keep_alive_max_count(1000);
  // cpp-httplib writes a response's head and body in separate sends: with Nagle's algorithm the
  // body would wait for the client's delayed ACK (40 ms on Linux) on every kept-alive request.
  s.set_tcp_nodelay(true);
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  s.Get("/readyz", [p](const httplib::Request&, httplib::Response& res) {
    res.status = p->ready ? 200 : 503;
    res.set_content(p->ready ? "ready\n" : "not ready\n", "text/plain");
  });
  s.Get("/metrics", [p](const httplib::Request& req, httplib::Response& res) {
    p->serve(req, res, p->public_metrics ? Role::kNone : Role::kViewer, [p](const AdminRequest&) {
      return p->metricsResponse();
    });
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                             std::exception_ptr) {
    res.status = 500;
    res.set_content(errorResponse(500, "internal error").body, "application/json");
  });
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      res.set_content(errorResponse(res.status, res.status == 404 ? "no such endpoint" : "request failed").body,
                      "application/json");
    }
  });
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::handle(const std::string& method, const std::string& pattern, Role least_role,
                         AdminHandler handler) {
  Impl* p = impl_.get();
  auto fn = [p, least_role, handler = std::move(handler)](const httplib::Request& req,
                                                          httplib::Response& res) {
    p->serve(req, res, least_role, handler);
  };
  if (method == "GET") p->server->Get(pattern, fn);
  else if (method == "POST") p->server->Post(pattern, fn);
  else if (method == "PUT") p->server->Put(pattern, fn);
  else if (method == "DELETE") p->server->Delete(pattern, fn);
}

void AdminServer::addCollectable(std::shared_ptr<prometheus::Collectable> source) {
  std::lock_guard<std::mutex> lock(impl_->registries_mu);
  impl_->registries.push_back(std::move(source));
}

void AdminServer::addExpositionSource(std::shared_ptr<const ExpositionSource> source) {
  std::lock_guard<std::mutex> lock(impl_->registries_mu);
  impl_->sources.push_back(std::move(source));
}

void AdminServer::setReady(bool ready) { impl_->ready = ready; }

bool AdminServer::tls() const { return impl_->tls != nullptr; }

Status AdminServer::checkReload(const AdminServerOptions& o) const {
  const Impl& im = *impl_;
  const bool wants_tls = tlsFilesOf(o).any();
  if (wants_tls != (im.tls != nullptr)) {
    return InvalidArgument(std::string("admin.tls ") + (wants_tls ? "added" : "removed") +
                           ": switching between HTTP and HTTPS takes effect at the next restart");
  }
  if (o.tokens.empty() && !isLoopback(im.options.host)) {
    return InvalidArgument("admin.tokens: the admin server on " + im.options.host +
                           " needs at least one token (only loopback may run without)");
  }
  if (wants_tls) {
    auto trial = ServerTls::load(tlsFilesOf(o));  // reads every file; nothing is applied
    if (!trial.ok()) return trial.status();
  }
  return Status::Ok();
}

Status AdminServer::reload(const AdminServerOptions& o) {
  Impl& im = *impl_;
  if (Status s = checkReload(o); !s.ok()) return s;
  if (im.tls) {
    if (Status s = im.tls->reload(tlsFilesOf(o)); !s.ok()) return s;
    spdlog::info("admin API certificate: {}", im.tls->describe());
  }
  {
    std::lock_guard<std::mutex> lock(im.live_mu);
    im.tokens = std::make_shared<const std::vector<AdminToken>>(o.tokens);
  }
  im.public_metrics = o.public_metrics;
  return Status::Ok();
}

Status AdminServer::start() {
  auto& s = *impl_->server;
  listenExclusively(s);
  if (impl_->options.port == 0) {
    port_ = s.bind_to_any_port(impl_->options.host);
  } else {
    port_ = s.bind_to_port(impl_->options.host, impl_->options.port) ? impl_->options.port : -1;
  }
  if (port_ <= 0) {
    return Unavailable("admin server cannot listen on " + impl_->options.host + ":" +
                       std::to_string(impl_->options.port) + " (in use by another process, or not an address of this machine)");
  }
  impl_->loop_done = false;
  impl_->thread = std::thread([this, &s] {
    s.listen_after_bind();
    impl_->loop_done = true;
  });
  if (impl_->options.tokens.empty()) {
    spdlog::warn("admin API on {}:{} has no tokens: anyone on this machine may use it",
                 impl_->options.host, port_);
  }
  spdlog::info("admin API listening on {}://{}:{}", tls() ? "https" : "http",
               impl_->options.host, port_);
  if (impl_->tls) spdlog::info("admin API certificate: {}", impl_->tls->describe());
  return Status::Ok();
}

void AdminServer::stop() {
  if (impl_ && impl_->thread.joinable()) {
    // httplib's stop() does nothing until the accept loop has started: repeat until it ends.
    while (!impl_->loop_done) {
      impl_->server->stop();
      std::this_thread::yield();
    }
    impl_->thread.join();
  }
}

}  // namespace greenlight
