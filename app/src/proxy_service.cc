#include "greenlight/app/proxy_service.h"

#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "greenlight/common/sealed.h"
#include "greenlight/proxy/listener_handover.h"

namespace greenlight::app {

std::optional<ProxyAppConfig> loadProxyConfig(const std::string& path, ConfigErrors& errors, EnvLookup env) {
  ConfigReader r(path, errors, std::move(env));
  auto root = r.loadFile();
  if (!root) return std::nullopt;
  ProxyAppConfig c;
  if (!r.expectMap(*root, "", {"secrets", "state_encryption", "log", "admin", "proxy"})) return std::nullopt;
  loadSecretsSection(r, (*root)["secrets"], "secrets");
  const auto state_key = parseStateEncryption(r, (*root)["state_encryption"], "state_encryption");
  c.log = parseLogOptions(r, (*root)["log"], "log");
  c.admin = parseAdminOptions(r, (*root)["admin"], "admin");
  c.proxy = proxy::parseProxyConfig(r, (*root)["proxy"], "proxy");
  c.proxy.state_key = state_key;
  if (!errors.empty()) return std::nullopt;
  return c;
}

StatusOr<std::unique_ptr<ProxyService>> ProxyService::start(const std::string& config_path,
                                                            std::optional<int> admin_port, bool takeover,
                                                            std::function<void()> on_handed_over) {
  ConfigErrors errors;
  auto config = loadProxyConfig(config_path, errors);
  if (!config) return InvalidArgument(errors.format());
  if (Status s = initLogging(config->log.format, config->log.level, config->log.redact); !s.ok()) return s;
  auto svc = std::unique_ptr<ProxyService>(new ProxyService());
  svc->config_path_ = config_path;
  auto store = proxy::RoutingStore::open(config->proxy.routes, config->proxy.state_file, config->proxy.state_key);
  if (!store.ok()) return store.status();
  svc->store_ = std::move(store.value());
  auto registry = std::make_shared<prometheus::Registry>();
  proxy::Handover handover;
  handover.on_handed_over = std::move(on_handed_over);
  if (takeover) {
    // The config was validated above: a bad one never takes anything from the running proxy.
    auto inherited = proxy::receiveListeners(config->proxy.runtime_socket);
    if (!inherited.ok()) return inherited.status();
    handover.inherited = std::move(inherited.value());
    spdlog::info("took over {} listener(s) from the running proxy", handover.inherited.size());
  }
  auto server = proxy::ProxyServer::start(config->proxy, *svc->store_, registry, svc->time_, std::move(handover));
  if (!server.ok()) return server.status();
  svc->proxy_ = std::move(server.value());
  if (admin_port) config->admin.port = *admin_port;
  auto admin = AdminServer::create(config->admin);
  if (!admin.ok()) return admin.status();
  svc->admin_ = std::move(admin.value());
  svc->admin_->addCollectable(registry);
  proxy::RoutingStore* st = svc->store_.get();
  proxy::ProxyServer* px = svc->proxy_.get();
  svc->admin_->handle("GET", "/api/v1/routes", Role::kViewer, [st](const AdminRequest&) {
    return jsonResponse(200, proxy::routesToJson(*st->current()));
  });
  svc->admin_->handle("GET", "/api/v1/stats", Role::kViewer, [px](const AdminRequest&) {
    return jsonResponse(200, px->statsJson());
  });
  svc->admin_->handle("POST", "/api/v1/runtime", Role::kOperator, [st, px](const AdminRequest& req) {
    auto r = st->execute(req.body, "admin-api " + req.principal, [px] { return px->statsJson(); });
    AdminResponse res;
    res.status = r.ok ? 200 : 400;
    res.content_type = "text/plain";
    res.body = r.output;
    return res;
  });
  ProxyService* self = svc.get();
  svc->admin_->handle("POST", "/-/reload", Role::kAdmin, [self](const AdminRequest& req) {
    spdlog::info("reload requested by {}", req.principal);
    if (Status s = self->reload(); !s.ok()) {
      return errorResponse(400, "config rejected, the running config stays:\n" + s.message());
    }
    return jsonResponse(200, R"({"status":"reloaded"})");
  });
  // After a takeover the predecessor lets go of the admin port as it stops: wait for it.
  Status started = svc->admin_->start();
  for (int tries = 0; takeover && !started.ok() && tries < 300; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    started = svc->admin_->start();
  }
  if (!started.ok()) return started;
  svc->admin_->setReady(true);
  return svc;
}

Status ProxyService::reload() {
  std::lock_guard<std::mutex> lock(reload_mu_);
  ConfigErrors errors;
  auto config = loadProxyConfig(config_path_, errors);
  Status s = config ? Status::Ok() : InvalidArgument(errors.format());
  if (s.ok()) s = admin_->checkReload(config->admin);
  if (s.ok()) s = proxy_->reloadTls(config->proxy.listeners, /*check_only=*/true);
  if (s.ok()) s = proxy_->reopenAccessLog();  // logrotate moved it: a new file at the path
  if (s.ok()) s = admin_->reload(config->admin);
  if (s.ok()) s = proxy_->reloadTls(config->proxy.listeners);
  if (!s.ok()) {
    spdlog::error("reload rejected: {}", s.message());
    spdlog::warn("keeping the running config");
    return s;
  }
  spdlog::info("config reloaded: certificates, admin tokens and the access-log file (routes change through the runtime API; other "
               "changes need `greenlight proxy --takeover`)");
  return Status::Ok();
}

ProxyService::~ProxyService() { stop(std::chrono::seconds(0)); }

void ProxyService::stop(Duration grace) {
  if (admin_) admin_->stop();
  if (proxy_) proxy_->stop(grace);
}

}  // namespace greenlight::app
