#include "greenlight/app/service.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <future>
#include <nlohmann/json.hpp>

#include "alert_routes.h"
#include "rollout_routes.h"
#include "status_routes.h"
#include "greenlight/probes/probe_json.h"

namespace greenlight::app {
namespace {

// A config of 10,000 probes builds a large YAML tree that is freed right after parsing; give
// those pages back to the system instead of keeping them as the process's resident size.
void releaseFreedMemory() { malloc_trim(0); }

}  // namespace

StatusOr<std::unique_ptr<Service>> Service::start(ServiceOptions options) {
  ConfigErrors errors;
  auto config = loadAppConfig(options.config_path, errors, options.env);
  if (!config) return InvalidArgument(errors.format());
  auto svc = std::unique_ptr<Service>(new Service());
  svc->options_ = std::move(options);
  svc->config_ = std::move(*config);
  if (Status s = initLogging(svc->config_.log_format, svc->config_.log_level, svc->config_.log_redact); !s.ok()) return s;
  AdminServerOptions admin = svc->config_.admin;
  if (svc->options_.admin_port) admin.port = *svc->options_.admin_port;
  auto server = AdminServer::create(admin);
  if (!server.ok()) return server.status();
  svc->admin_ = std::move(server.value());
  svc->registry_ = std::make_shared<prometheus::Registry>();
  svc->reload_ok_ = &prometheus::BuildGauge()
                         .Name("greenlight_config_last_reload_successful")
                         .Help("1 if the last config load or reload succeeded")
                         .Register(*svc->registry_)
                         .Add({});
  svc->reload_time_ = &prometheus::BuildGauge()
                           .Name("greenlight_config_last_reload_success_timestamp_seconds")
                           .Help("Unix time of the last successful config load")
                           .Register(*svc->registry_)
                           .Add({});
  prometheus::BuildGauge()
      .Name("greenlight_build_info")
      .Help("Greenlight version")
      .Register(*svc->registry_)
      .Add({{"version", "0.1.0"}})
      .Set(1);
  svc->reload_ok_->Set(1);
  svc->reload_time_->Set(std::chrono::duration<double>(svc->time_.wallNow().time_since_epoch()).count());
  svc->engine_ = std::make_unique<probes::ProbeEngine>(svc->time_, svc->random_);
  if (Status s = svc->applyAlerting(svc->config_.alerting); !s.ok()) return s;
  // Every probe result goes to the alert rules the moment it lands, on the probe loop.
  svc->engine_->addListener([p = svc.get()](const probes::ProbeSpec& spec, const probes::ProbeResult& result,
                                            const probes::HealthState& health, probes::HealthTransition) {
    auto alerting = p->alerts();
    if (!alerting) return;
    alerts::Observation o;
    o.labels.insert(spec.labels.begin(), spec.labels.end());
    o.labels["probe"] = spec.name;
    o.ok = result.success;
    o.latency_seconds = toSeconds(result.duration);
    if (health.health != probes::Health::kUnknown) o.unhealthy = health.health == probes::Health::kUnhealthy;
    alerting->observe(o);
  });
  const size_t probe_count = svc->config_.probes.size();
  svc->engine_->apply(std::move(svc->config_.probes));  // the engine owns the specs from here
  svc->config_.probes.clear();
  releaseFreedMemory();
  if (svc->config_.rollouts.enabled) {
    // Rollout events become alert events (rules of kind `event`), when alerting runs.
    auto raise = [p = svc.get()](const std::string& event, const std::map<std::string, std::string>& labels,
                                 const std::map<std::string, std::string>& annotations) {
      if (auto a = p->alerts()) a->raise(event, labels, annotations);
    };
    // Analysis probes: a configured probe run once more, now, with the preview header.
    auto run_probe = [p = svc.get()](const std::string& name, const std::string& header,
                                     const std::string& value) -> std::optional<controller::Controller::ProbeOutcome> {
      auto result = std::make_shared<std::promise<std::optional<probes::ProbeResult>>>();
      auto future = result->get_future();
      p->engine_->runOnce(name, {{header, value}}, [result](std::optional<probes::ProbeResult> r) { result->set_value(std::move(r)); });
      // The run is bounded by the probe's own timeout; this only guards against a stuck loop.
      if (future.wait_for(std::chrono::minutes(2)) != std::future_status::ready) return std::nullopt;
      auto r = future.get();
      if (!r) return std::nullopt;
      return controller::Controller::ProbeOutcome{r->success, r->message};
    };
    auto c = controller::Controller::start(svc->config_.rollouts, svc->time_, *svc->registry_, raise, run_probe);
    if (!c.ok()) return c.status();
    svc->controller_ = std::move(c.value());
  }
  svc->engine_->start();
  svc->admin_->addCollectable(svc->registry_);
  svc->admin_->addExpositionSource(svc->engine_->metrics());
  svc->registerRoutes();
  if (Status s = svc->admin_->start(); !s.ok()) return s;
  svc->admin_->setReady(true);
  spdlog::info("running {} probes from {}", probe_count, svc->options_.config_path);
  return svc;
}

Service::~Service() { stop(); }

void Service::stop() {
  if (admin_) admin_->stop();
  if (engine_) engine_->stop();  // first: alert timers run on the probe loop
  if (controller_) controller_->stop();
  if (auto a = alerts()) a->stop();
}

Status Service::applyAlerting(const alerts::AlertingConfig& config) {
  auto current = alerts();
  if (!config.enabled) {
    if (current) spdlog::warn("the alerting section was removed: alerting stays as it is until a restart");
    return Status::Ok();
  }
  if (current) {
    current->reconfigure(config);
    return Status::Ok();
  }
  auto created = alerts::AlertEngine::create(config, engine_->scheduler(), random_, *registry_);
  if (!created.ok()) return created.status();
  std::atomic_store(&alerts_, std::shared_ptr<alerts::AlertEngine>(std::move(created.value())));
  spdlog::info("alerting: {} rule(s), {} receiver(s)", config.rules.size(), config.receivers.size());
  return Status::Ok();
}

Status Service::reload() {
  std::lock_guard<std::mutex> lock(reload_mu_);
  ConfigErrors errors;
  auto config = loadAppConfig(options_.config_path, errors, options_.env);
  if (!config) {
    reload_ok_->Set(0);
    for (const auto& e : errors.all()) spdlog::error("reload rejected: {}", e.toString());
    spdlog::warn("keeping the running config");
    return InvalidArgument(errors.format());
  }
  // The admin section first: its certificate files must be readable before anything changes.
  if (Status s = admin_->checkReload(config->admin); !s.ok()) {
    reload_ok_->Set(0);
    spdlog::error("reload rejected: {}", s.message());
    spdlog::warn("keeping the running config");
    return s;
  }
  if (config->admin.host != config_.admin.host || config->admin.port != config_.admin.port) {
    spdlog::warn("admin.listen changed: it takes effect at the next restart");
  }
  if (config->rollouts.enabled != config_.rollouts.enabled) {
    spdlog::warn("the rollouts section was added or removed: that takes effect at the next restart");
  } else if (controller_) {
    // First, as it may refuse (a service removed mid-rollout): then nothing else changes either.
    if (Status s = controller_->reconfigure(config->rollouts); !s.ok()) {
      reload_ok_->Set(0);
      spdlog::error("reload rejected: {}", s.message());
      spdlog::warn("keeping the running config");
      return s;
    }
  }
  if (config->log_level != config_.log_level) {
    spdlog::set_level(spdlog::level::from_str(config->log_level));
  }
  if (Status s = applyAlerting(config->alerting); !s.ok()) {
    reload_ok_->Set(0);
    spdlog::error("reload rejected: {}", s.message());
    return s;
  }
  if (Status s = admin_->reload(config->admin); !s.ok()) {
    // Checked above; only a certificate file changing in between gets here.
    spdlog::error("admin section not applied: {}", s.message());
  }
  const size_t probe_count = config->probes.size();
  engine_->apply(std::move(config->probes));
  releaseFreedMemory();
  spdlog::info("config reloaded: {} probes", probe_count);
  config_.log_level = config->log_level;
  config_.admin = config->admin;
  reload_ok_->Set(1);
  reload_time_->Set(std::chrono::duration<double>(time_.wallNow().time_since_epoch()).count());
  return Status::Ok();
}

void Service::registerRoutes() {
  registerAlertRoutes(*admin_, [this] { return alerts(); }, time_);
  registerRolloutRoutes(*admin_, [this] { return controller_.get(); }, time_);
  registerStatusRoutes(*admin_);
  admin_->handle("GET", "/api/v1/probes", Role::kViewer, [this](const AdminRequest&) {
    return jsonResponse(200, probes::probesToJson(engine_->snapshot()));
  });
  admin_->handle("POST", "/-/reload", Role::kAdmin, [this](const AdminRequest& req) {
    spdlog::info("reload requested by {}", req.principal);
    Status s = reload();
    if (!s.ok()) return errorResponse(400, "config rejected, the running config stays:\n" + s.message());
    return jsonResponse(200, R"({"status":"reloaded"})");
  });
}

}  // namespace greenlight::app
