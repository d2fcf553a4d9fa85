// `greenlight run`: the control-plane process. Owns the probe engine and the admin server, and
// reloads its config on demand: a reload that fails keeps the running config and says why.
// Thread-safe.
#pragma once

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <mutex>
#include <string>

#include "greenlight/alerts/alert_engine.h"
#include "greenlight/app/app_config.h"
#include "greenlight/controller/controller.h"
#include "greenlight/common/admin_server.h"
#include "greenlight/common/random.h"
#include "greenlight/common/time_source.h"
#include "greenlight/probes/probe_engine.h"

namespace greenlight::app {

struct ServiceOptions {
  std::string config_path;
  std::optional<int> admin_port;  // overrides the config's port (0: pick a free one)
  EnvLookup env = processEnv();
};

class Service {
 public:
  static StatusOr<std::unique_ptr<Service>> start(ServiceOptions options);
  ~Service();
  // Re-reads the config file. On error the running config stays and the error says why.
  Status reload();
  void stop();
  int adminPort() const { return admin_->port(); }
  bool adminTls() const { return admin_->tls(); }
  probes::ProbeEngine& engine() { return *engine_; }
  controller::Controller* controller() { return controller_.get(); }
  // Null while alerting is not configured.
  std::shared_ptr<alerts::AlertEngine> alerts() const { return std::atomic_load(&alerts_); }

 private:
  Service() = default;
  void registerRoutes();
  Status applyAlerting(const alerts::AlertingConfig& config);
  ServiceOptions options_;
  RealTimeSource time_;
  DefaultRandom random_;
  std::mutex reload_mu_;
  AppConfig config_;
  std::unique_ptr<probes::ProbeEngine> engine_;
  std::shared_ptr<alerts::AlertEngine> alerts_;  // read by the probe loop: atomic_load/store
  std::unique_ptr<controller::Controller> controller_;
  std::unique_ptr<AdminServer> admin_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* reload_ok_ = nullptr;
  prometheus::Gauge* reload_time_ = nullptr;
};

}  // namespace greenlight::app
