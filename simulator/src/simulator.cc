#include "greenlight/simulator/simulator.h"

#include <httplib.h>
#include "greenlight/common/http_listen.h"
#include <spdlog/spdlog.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "greenlight/common/crypto.h"
#include "greenlight/common/random.h"
#include "greenlight/common/tls.h"
#include "greenlight/simulator/cert_gen.h"

namespace greenlight::simulator {

using nlohmann::json;

std::vector<OemProfile> SimulatorOptions::defaultOems() {
  std::vector<OemProfile> oems = {
      {"tesla", 8ms, 3ms, 0.0, 365 * 24h, -1h},
      {"bmw", 15ms, 5ms, 0.0, 36h, -1h},  // certificate close to expiry
      {"ford", 25ms, 10ms, 0.0, 365 * 24h, -1h},
      {"hyundai", 12ms, 4ms, 0.0, 365 * 24h, -1h},
  };
  return oems;
}

namespace {

constexpr const char* kVehicleSuffixes[] = {"0001", "0002"};
constexpr const char* kModels[] = {"Model 3", "i4", "F-150 Lightning", "Ioniq 5"};

std::string bearer(const httplib::Request& req) {
  std::string h = req.get_header_value("Authorization");
  if (h.rfind("Bearer ", 0) != 0) return "";
  return h.substr(7);
}

// "Basic base64(id:secret)" -> id, secret (form-decoded as RFC 6749 says).
bool basicCredentials(const std::string& header, std::string* id, std::string* secret) {
  if (header.rfind("Basic ", 0) != 0) return false;
  std::string b64 = header.substr(6);
  std::string raw(b64.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0) return false;
  while (!b64.empty() && b64.back() == '=') {
    b64.pop_back();
    --n;
  }
  raw.resize(static_cast<size_t>(std::max(0, n)));
  auto colon = raw.find(':');
  if (colon == std::string::npos) return false;
  *id = httplib::detail::decode_url(raw.substr(0, colon), true);
  *secret = httplib::detail::decode_url(raw.substr(colon + 1), true);
  return true;
}

void sendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

}  // namespace

struct Simulator::Impl {
  SimulatorOptions options;
  RealTimeSource time;
  DefaultRandom random;
  std::string cert_dir;
  bool own_cert_dir = false;
  std::string ca_file;

  struct Listener {
    std::string name;  // "platform" or the OEM
    const OemProfile* oem = nullptr;
    std::unique_ptr<httplib::Server> server;
    std::shared_ptr<ServerTls> tls;  // what an HTTPS listener presents (TLS 1.2+, as every listener)
    std::thread thread;
    std::atomic<bool> done{true};
    int port = 0;
  };
  std::vector<std::unique_ptr<Listener>> listeners;
  std::unique_ptr<Listener> admin;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::map<std::string, Fault> faults;
  std::deque<json> received;  // the demo's alert receiver: the last notifications posted to it
  std::map<std::string, MonoTime> tokens;  // issued access tokens -> expiry
  int tokens_issued = 0;

  std::optional<Fault> faultFor(const std::string& target) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = faults.find(target);
    if (it == faults.end()) return std::nullopt;
    return it->second;
  }

  // Waits for d, or less if the simulator stops. Simulated server latency, not synchronisation.
  void delay(Duration d) {
    if (d <= Duration(0)) return;
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, d, [this] { return stopping; });
  }

  void hang(const std::string& target) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::minutes(10), [&] {
      auto it = faults.find(target);
      return stopping || it == faults.end() || !it->second.hang;
    });
  }

  // Applies latency and faults for the targets a request touches. Returns true when the
  // response has been decided by a fault.
  bool applyFaults(const std::vector<std::string>& targets, const OemProfile* profile,
                   httplib::Response& res) {
    Duration latency{0};
    if (profile) {
      double j = (random.uniform01() * 2 - 1) * static_cast<double>(profile->jitter.count());
      latency = profile->latency + Duration(static_cast<int64_t>(j));
    }
    std::optional<Fault> fault;
    std::string fault_target;
    for (const auto& t : targets) {
      if (auto f = faultFor(t)) {
        fault = f;
        fault_target = t;
        break;
      }
    }
    if (fault) latency += fault->added_latency;
    delay(latency);
    if (fault && fault->hang) {
      hang(fault_target);
      sendJson(res, 503, {{"error", "simulator stopping"}});
      return true;
    }
    if (fault && fault->reset) {
      // Promise a body, then break the connection after the headers.
      res.set_content_provider(
          64, "application/json", [](size_t, size_t, httplib::DataSink&) { return false; });
      return true;
    }
    if (fault && fault->rate_limit > 0 && random.uniform01() < fault->rate_limit) {
      res.set_header("Retry-After", "1");
      sendJson(res, 429, {{"error", "rate_limited"}});
      return true;
    }
    double error_rate = fault ? fault->error_rate : 0;
    if (profile) error_rate = std::max(error_rate, profile->error_rate);
    if (error_rate > 0 && random.uniform01() < error_rate) {
      sendJson(res, fault ? fault->error_status : 503, {{"error", "upstream_unavailable"}});
      return true;
    }
    if (fault && fault->invalid_json) {
      res.status = 200;
      res.set_content("<html><body>502 Bad Gateway (proxy error page)</body></html>", "application/json");
      return true;
    }
    return false;
  }

  bool authorized(const httplib::Request& req, httplib::Response& res) {
    std::string token = bearer(req);
    std::lock_guard<std::mutex> lock(mu);
    auto it = tokens.find(token);
    if (token.empty() || it == tokens.end() || it->second <= time.monotonicNow()) {
      res.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
      res.status = 401;
      res.set_content(R"({"error":"invalid_token"})", "application/json");
      return false;
    }
    return true;
  }

  void issueToken(const httplib::Request& req, httplib::Response& res) {
    std::string id, secret;
    if (!basicCredentials(req.get_header_value("Authorization"), &id, &secret)) {
      id = req.get_param_value("client_id");
      secret = req.get_param_value("client_secret");
    }
    if (req.get_param_value("grant_type") != "client_credentials") {
      sendJson(res, 400, {{"error", "unsupported_grant_type"}});
      return;
    }
    const bool id_ok = constantTimeEqual(sha256(id), sha256(options.client_id));
    const bool secret_ok = constantTimeEqual(sha256(secret), sha256(options.client_secret));
    if (!id_ok || !secret_ok) {
      sendJson(res, 401, {{"error", "invalid_client"}});
      return;
    }
    uint8_t bytes[24];
    RAND_bytes(bytes, sizeof bytes);
    const std::string token = toHex(bytes, sizeof bytes);
    {
      std::lock_guard<std::mutex> lock(mu);
      const MonoTime now = time.monotonicNow();
      if (tokens.size() > 10000) std::erase_if(tokens, [now](const auto& kv) { return kv.second <= now; });
      tokens[token] = now + options.token_ttl;
      ++tokens_issued;
    }
    sendJson(res, 200, {{"access_token", token}, {"token_type", "Bearer"},
                        {"expires_in", std::chrono::duration_cast<std::chrono::seconds>(options.token_ttl).count()}});
  }

  std::vector<std::string> vehiclesOf(const OemProfile* only) const {
    std::vector<std::string> out;
    for (const auto& oem : options.oems) {
      if (only && only != &oem) continue;
      for (const char* s : kVehicleSuffixes) out.push_back(oem.name + "-" + s);
    }
    return out;
  }

  const OemProfile* oemOfVehicle(const std::string& id) const {
    for (const auto& oem : options.oems) {
      if (id.rfind(oem.name + "-", 0) == 0) return &oem;
    }
    return nullptr;
  }

  json vehicleData(const std::string& id, const std::string& what) {
    // Plausible values that move a little between calls.
    double r = random.uniform01();
    size_t h = std::hash<std::string>{}(id);
    if (what == "odometer") {
      return {{"odometer", {{"distance", 10000.0 + static_cast<double>(h % 90000) + r}, {"unit", "km"}}}};
    }
    if (what == "battery") {
      return {{"battery", {{"percent_remaining", 0.2 + 0.7 * r}, {"range", 120 + 300 * r}}}};
    }
    if (what == "fuel") {
      return {{"fuel", {{"percent_remaining", 0.1 + 0.8 * r}, {"range", 200 + 400 * r}}}};
    }
    return {{"location", {{"latitude", 48.1 + (h % 100) / 1000.0}, {"longitude", 11.5 + r / 100}}}};
  }

  // A release of the sample service: what it is, and fault injection, nothing else.
  void releaseRoutes(Listener& l) {
    const std::string target = l.name;
    const std::string release = target.substr(std::string("release-").size());
    auto answer = [=, this](const httplib::Request&, httplib::Response& res) {
      if (applyFaults({target}, nullptr, res)) return;
      sendJson(res, 200, {{"service", "vehicles"}, {"release", release}});
    };
    l.server->Get("/health", answer);
    l.server->Get("/", answer);
  }

  void routes(Listener& l) {
    auto& s = *l.server;
    const OemProfile* profile = l.oem;
    const std::string name = l.name;
    auto targetsFor = [name](const OemProfile* vehicle_oem) {
      std::vector<std::string> t = {name};
      if (vehicle_oem && vehicle_oem->name != name) t.push_back(vehicle_oem->name);
      return t;
    };
    s.Get("/health", [=, this](const httplib::Request&, httplib::Response& res) {
      if (applyFaults({name}, profile, res)) return;
      sendJson(res, 200, {{"status", "ok"}, {"service", name}});
    });
    s.Post("/oauth2/token", [=, this](const httplib::Request& req, httplib::Response& res) {
      if (applyFaults({name}, profile, res)) return;
      issueToken(req, res);
    });
    s.Get("/v2.0/vehicles", [=, this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      if (applyFaults({name}, profile, res)) return;
      json list = json::array();
      for (const auto& id : vehiclesOf(profile)) list.push_back({{"id", id}, {"make", oemOfVehicle(id)->name}});
      sendJson(res, 200, {{"vehicles", list}, {"paging", {{"count", list.size()}, {"offset", 0}}}});
    });
    s.Get(R"(/v2.0/vehicles/([A-Za-z0-9_-]+))", [=, this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      const std::string id = req.matches[1];
      const OemProfile* oem = oemOfVehicle(id);
      if (!oem || (profile && oem != profile)) return sendJson(res, 404, {{"error", "vehicle_not_found"}});
      if (applyFaults(targetsFor(oem), profile ? profile : oem, res)) return;
      size_t idx = static_cast<size_t>(oem - options.oems.data()) % 4;
      sendJson(res, 200, {{"id", id}, {"make", oem->name}, {"model", kModels[idx]}, {"year", 2024}});
    });
    s.Get(R"(/v2.0/vehicles/([A-Za-z0-9_-]+)/(odometer|battery|fuel|location))",
          [=, this](const httplib::Request& req, httplib::Response& res) {
            if (!authorized(req, res)) return;
            const std::string id = req.matches[1];
            const OemProfile* oem = oemOfVehicle(id);
            if (!oem || (profile && oem != profile)) return sendJson(res, 404, {{"error", "vehicle_not_found"}});
            if (applyFaults(targetsFor(oem), profile ? profile : oem, res)) return;
            sendJson(res, 200, {{"data", vehicleData(id, req.matches[2])}, {"meta", {{"oem", oem->name}}}});
          });
  }

  void adminRoutes(httplib::Server& s, Simulator* self) {
    s.Get("/info", [self](const httplib::Request&, httplib::Response& res) {
      res.set_content(self->infoJson(), "application/json");
    });
    s.Get("/faults", [this](const httplib::Request&, httplib::Response& res) {
      json out = json::object();
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& [t, f] : faults) {
        out[t] = {{"error_rate", f.error_rate}, {"status", f.error_status},
                  {"latency_ms", std::chrono::duration_cast<std::chrono::milliseconds>(f.added_latency).count()},
                  {"hang", f.hang}, {"rate_limit", f.rate_limit}, {"reset", f.reset}, {"invalid_json", f.invalid_json}};
      }
      sendJson(res, 200, out);
    });
    auto put = [self](const httplib::Request& req, httplib::Response& res) {
      auto fault = parseFaultJson(req.body);
      if (!fault.ok()) return sendJson(res, 400, {{"error", fault.status().message()}});
      Status st = self->setFault(req.matches[1], *fault);
      if (!st.ok()) return sendJson(res, 404, {{"error", st.message()}});
      sendJson(res, 200, {{"target", req.matches[1].str()}, {"status", "fault set"}});
    };
    s.Put(R"(/faults/([a-z0-9_-]+))", put);
    s.Post(R"(/faults/([a-z0-9_-]+))", put);
    s.Delete(R"(/faults/([a-z0-9_-]+))", [self](const httplib::Request& req, httplib::Response& res) {
      self->clearFaults(req.matches[1]);
      sendJson(res, 200, {{"target", req.matches[1].str()}, {"status", "healed"}});
    });
    // A stand-in alert receiver for the demo: records what Greenlight's webhook sends.
    s.Post("/receiver", [this](const httplib::Request& req, httplib::Response& res) {
      json body = json::parse(req.body, nullptr, false);
      if (body.is_discarded()) return sendJson(res, 400, {{"error", "expected JSON"}});
      std::string summary = body.value("status", "?") + " " + body["groupLabels"].dump();
      {
        std::lock_guard<std::mutex> lock(mu);
        received.push_back(std::move(body));
        while (received.size() > 100) received.pop_front();
      }
      spdlog::info("demo receiver: notification {}", summary);
      sendJson(res, 200, {{"status", "received"}});
    });
    s.Get("/receiver", [this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu);
      sendJson(res, 200, json(received));
    });
    s.Delete("/faults", [self](const httplib::Request&, httplib::Response& res) {
      self->clearFaults("");
      sendJson(res, 200, {{"status", "all healed"}});
    });
  }

  Status listen(Listener& l, int port) {
    auto& s = *l.server;
    s.new_task_queue = [] { return new httplib::ThreadPool(32); };
    s.set_read_timeout(5, 0);
    // cpp-httplib notices a stop only between a connection's requests, after the keep-alive
    // wait: at its default of 5 s, a client holding a connection open delayed every stop by up to
    // 5 s (the admin API's is 1 s too). The proxy retries a request on a fresh connection when a
    // pooled one turns out closed, so the shorter wait costs it nothing.
    s.set_keep_alive_timeout(1);
    s.set_keep_alive_max_count(1000);
    // cpp-httplib sends a response's head and body separately: without TCP_NODELAY the body waits
    // for the client's delayed ACK, and every kept-alive request took 40 ms more than it should.
    s.set_tcp_nodelay(true);
    listenExclusively(s);
    l.port = port == 0 ? s.bind_to_any_port(options.host) : (s.bind_to_port(options.host, port) ? port : -1);
    if (l.port <= 0) return Unavailable("simulator: cannot listen on " + options.host + ":" + std::to_string(port));
    l.done = false;
    l.thread = std::thread([&l] {
      l.server->listen_after_bind();
      l.done = true;
    });
    return Status::Ok();
  }

  static void stopListener(Listener& l) {
    if (!l.thread.joinable()) return;
    while (!l.done) {
      l.server->stop();
      std::this_thread::yield();
    }
    l.thread.join();
  }
};

Simulator::Simulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Simulator::~Simulator() { stop(); }

StatusOr<std::unique_ptr<Simulator>> Simulator::start(SimulatorOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  Impl& im = *impl;
  if (im.options.cert_dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "greenlight-sim-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) return Unavailable("simulator: cannot create a temp dir");
    im.cert_dir = tmpl;
    im.own_cert_dir = true;
  } else {
    im.cert_dir = im.options.cert_dir;
    std::error_code ec;
    std::filesystem::create_directories(im.cert_dir, ec);
  }
  std::optional<CertAuthority> ca;
  if (im.options.tls) {
    auto created = CertAuthority::create(im.cert_dir, "Greenlight Simulator CA");
    if (!created.ok()) return created.status();
    ca.emplace(std::move(created.value()));
    im.ca_file = ca->caFile();
  }
  auto make = [&](Impl::Listener& l) -> Status {
    if (!im.options.tls) {
      l.server = std::make_unique<httplib::Server>();
      return Status::Ok();
    }
    auto files = l.oem ? ca->issue(l.name, l.oem->cert_not_before, l.oem->cert_validity)
                       : ca->issue(l.name, -1h, 365 * 24h);
    if (!files.ok()) return files.status();
    auto tls = ServerTls::load({files->cert_file, files->key_file, "", "simulator " + l.name});
    if (!tls.ok()) return tls.status();
    l.tls = std::move(tls.value());
    auto server = std::make_unique<httplib::SSLServer>([t = l.tls.get()](SSL_CTX& ctx) {
      t->apply(&ctx);
      return true;
    });
    if (!server->is_valid()) return Internal("simulator: cannot create a TLS context for " + l.name);
    l.server = std::move(server);
    return Status::Ok();
  };
  auto sim = std::unique_ptr<Simulator>(new Simulator(std::move(impl)));
  Impl& i = *sim->impl_;
  auto add = [&](const std::string& name, const OemProfile* oem, int port) -> Status {
    auto l = std::make_unique<Impl::Listener>();
    l->name = name;
    l->oem = oem;
    if (Status made = make(*l); !made.ok()) return made;
    i.routes(*l);
    Status s = i.listen(*l, port);
    i.listeners.push_back(std::move(l));
    return s;
  };
  if (Status s = add("platform", nullptr, i.options.platform_port); !s.ok()) return s;
  for (const auto& oem : i.options.oems) {
    if (Status s = add(oem.name, &oem, 0); !s.ok()) return s;
  }
  for (const auto& release : i.options.releases) {
    auto l = std::make_unique<Impl::Listener>();
    l->name = "release-" + release;
    l->server = std::make_unique<httplib::Server>();  // behind a proxy: plain HTTP
    i.releaseRoutes(*l);
    Status s = i.listen(*l, 0);
    i.listeners.push_back(std::move(l));
    if (!s.ok()) return s;
  }
  i.admin = std::make_unique<Impl::Listener>();
  i.admin->name = "admin";
  i.admin->server = std::make_unique<httplib::Server>();
  i.adminRoutes(*i.admin->server, sim.get());
  if (Status s = i.listen(*i.admin, i.options.admin_port); !s.ok()) return s;
  return sim;
}

void Simulator::stop() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  for (auto& l : impl_->listeners) Impl::stopListener(*l);
  if (impl_->admin) Impl::stopListener(*impl_->admin);
  if (impl_->own_cert_dir) {
    std::error_code ec;
    std::filesystem::remove_all(impl_->cert_dir, ec);
  }
  impl_.reset();
}

int Simulator::platformPort() const { return impl_->listeners.front()->port; }
int Simulator::adminPort() const { return impl_->admin->port; }
int Simulator::oemPort(const std::string& oem) const {
  for (const auto& l : impl_->listeners) {
    if (l->oem && l->name == oem) return l->port;
  }
  return -1;
}
int Simulator::releasePort(const std::string& release) const {
  for (const auto& l : impl_->listeners) {
    if (l->name == "release-" + release) return l->port;
  }
  return -1;
}
std::string Simulator::caFile() const { return impl_->ca_file; }
std::string Simulator::scheme() const { return impl_->options.tls ? "https" : "http"; }
const SimulatorOptions& Simulator::options() const { return impl_->options; }

std::vector<std::string> Simulator::oemNames() const {
  std::vector<std::string> out;
  for (const auto& o : impl_->options.oems) out.push_back(o.name);
  return out;
}

Status Simulator::setFault(const std::string& target, const Fault& fault) {
  const bool release = target.rfind("release-", 0) == 0 && releasePort(target.substr(8)) >= 0;
  if (target != "platform" && oemPort(target) < 0 && !release) {
    return NotFound("no simulated target \"" + target + "\" (platform, an OEM, or release-NAME)");
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->faults[target] = fault;
  }
  impl_->cv.notify_all();
  return Status::Ok();
}

void Simulator::clearFaults(const std::string& target) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (target.empty()) impl_->faults.clear();
    else impl_->faults.erase(target);
  }
  impl_->cv.notify_all();
}

int Simulator::tokensIssued() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->tokens_issued;
}

std::string Simulator::infoJson() const {
  const auto& o = impl_->options;
  json releases = json::object();
  for (const auto& r : o.releases) {
    releases[r] = {{"url", "http://" + o.host + ":" + std::to_string(releasePort(r))}, {"port", releasePort(r)}};
  }
  json oems = json::object();
  for (const auto& oem : o.oems) {
    oems[oem.name] = {{"url", scheme() + "://" + o.host + ":" + std::to_string(oemPort(oem.name))},
                      {"port", oemPort(oem.name)}};
  }
  return json{{"platform", {{"url", scheme() + "://" + o.host + ":" + std::to_string(platformPort())},
                            {"port", platformPort()}}},
              {"oems", oems},
              {"releases", releases},
              {"admin", {{"url", "http://" + o.host + ":" + std::to_string(adminPort())}, {"port", adminPort()}}},
              {"ca_file", impl_->ca_file},
              {"client_id", o.client_id}}
      .dump(2);
}

StatusOr<Fault> parseFaultJson(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("expected a JSON object");
  Fault f;
  for (const auto& [k, v] : j.items()) {
    auto number = [&](double lo, double hi) -> StatusOr<double> {
      if (!v.is_number() || v.get<double>() < lo || v.get<double>() > hi) {
        return InvalidArgument(k + ": expected a number from " + std::to_string(lo) + " to " + std::to_string(hi));
      }
      return v.get<double>();
    };
    auto boolean = [&]() -> StatusOr<bool> {
      if (!v.is_boolean()) return InvalidArgument(k + ": expected true or false");
      return v.get<bool>();
    };
    if (k == "error_rate") {
      auto n = number(0, 1);
      if (!n.ok()) return n.status();
      f.error_rate = *n;
    } else if (k == "status") {
      auto n = number(400, 599);
      if (!n.ok()) return n.status();
      f.error_status = static_cast<int>(*n);
    } else if (k == "latency_ms") {
      auto n = number(0, 600000);
      if (!n.ok()) return n.status();
      f.added_latency = std::chrono::milliseconds(static_cast<int64_t>(*n));
    } else if (k == "rate_limit") {
      auto n = number(0, 1);
      if (!n.ok()) return n.status();
      f.rate_limit = *n;
    } else if (k == "hang" || k == "reset" || k == "invalid_json") {
      auto b = boolean();
      if (!b.ok()) return b.status();
      (k == "hang" ? f.hang : k == "reset" ? f.reset : f.invalid_json) = *b;
    } else {
      return InvalidArgument("unknown key \"" + k + "\" (expected error_rate, status, latency_ms, hang, rate_limit, reset, invalid_json)");
    }
  }
  return f;
}

}  // namespace greenlight::simulator
