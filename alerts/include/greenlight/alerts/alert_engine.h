// Alerting as one component: rules -> dispatcher -> outbox -> receivers, with its state (firing
// alerts, groups and what was notified, silences) saved after every change so a restart
// neither loses an alert nor pages twice. observe() is called on the probe loop, so a probe
// result is evaluated the moment it lands; timers (ticks, group flushes) run on the Scheduler
// given; deliveries run on their own thread.
// Thread-safe: one lock around rules and dispatcher, taken by every public method and timer.
#pragma once

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <mutex>

#include "greenlight/alerts/alert_config.h"
#include "greenlight/alerts/dispatcher.h"
#include "greenlight/alerts/outbox.h"
#include "greenlight/alerts/rule_engine.h"

namespace greenlight::alerts {

struct AlertView {
  InstanceView instance;
  MuteState mute;
};

class AlertEngine {
 public:
  // Loads the state a previous run left in config.state_dir; an unreadable file is an error.
  static StatusOr<std::unique_ptr<AlertEngine>> create(const AlertingConfig& config, Scheduler& scheduler,
                                                       RandomSource& random, prometheus::Registry& registry,
                                                       std::unique_ptr<HttpClient> http = makeCurlHttpClient());
  ~AlertEngine();

  void observe(const Observation& o);
  void raise(const std::string& event, const Labels& labels, const Labels& annotations);
  void reconfigure(const AlertingConfig& config);
  std::string addSilence(Silence s);
  bool expireSilence(const std::string& id);
  std::vector<Silence> silences();
  std::vector<AlertView> alerts();
  size_t outboxDepth() const { return deliverer_->depth(); }
  void stop();

 private:
  AlertEngine(const AlertingConfig& config, Scheduler& scheduler, RandomSource& random,
              prometheus::Registry& registry, std::unique_ptr<HttpClient> http);
  Status loadState();
  void saveState();
  void onTick();
  void apply(const AlertingConfig& config);
  void updateGauges();
  AlertingConfig config_;
  std::recursive_mutex mu_;
  std::unique_ptr<Scheduler> guarded_;  // the given scheduler, running callbacks under mu_
  std::unique_ptr<Deliverer> deliverer_;
  std::unique_ptr<RuleEngine> rules_;
  std::unique_ptr<Dispatcher> dispatcher_;
  prometheus::Family<prometheus::Gauge>* alerts_gauge_;
  std::map<std::pair<std::string, std::string>, prometheus::Gauge*> gauges_;
  TimerId tick_timer_ = 0;
  bool state_dirty_ = false;
  bool watchdog_started_ = false;
  std::string state_file_;
  std::mutex stop_mu_;
  bool stopped_ = false;
};

}  // namespace greenlight::alerts
