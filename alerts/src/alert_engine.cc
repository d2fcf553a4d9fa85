#include "greenlight/alerts/alert_engine.h"
#include "greenlight/common/time_format.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "greenlight/common/failpoint.h"
#include "greenlight/common/files.h"

namespace greenlight::alerts {

using nlohmann::json;

namespace {

// Runs every callback of the wrapped scheduler under the engine's lock.
class GuardedScheduler final : public Scheduler {
 public:
  GuardedScheduler(Scheduler& inner, std::recursive_mutex& mu) : inner_(inner), mu_(mu) {}
  TimerId scheduleAt(MonoTime when, std::function<void()> fn) override {
    return inner_.scheduleAt(when, [this, fn = std::move(fn)] {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      fn();
    });
  }
  void cancel(TimerId id) override { inner_.cancel(id); }
  const TimeSource& time() const override { return inner_.time(); }

 private:
  Scheduler& inner_;
  std::recursive_mutex& mu_;
};


json labelsJson(const Labels& l) {
  json j = json::object();
  for (const auto& [k, v] : l) j[k] = v;
  return j;
}
Labels labelsFrom(const json& j) {
  Labels l;
  for (auto it = j.begin(); it != j.end(); ++it) l[it.key()] = it.value().get<std::string>();
  return l;
}
json alertJson(const Alert& a) {
  return {{"labels", labelsJson(a.labels)}, {"annotations", labelsJson(a.annotations)}, {"firing", a.firing},
          {"starts_at_ms", toUnixMillis(a.starts_at)}, {"ends_at_ms", toUnixMillis(a.ends_at)}};
}
Alert alertFrom(const json& j) {
  Alert a;
  a.labels = labelsFrom(j.at("labels"));
  a.annotations = labelsFrom(j.at("annotations"));
  a.firing = j.at("firing").get<bool>();
  a.starts_at = fromUnixMillis(j.at("starts_at_ms").get<int64_t>());
  a.ends_at = fromUnixMillis(j.at("ends_at_ms").get<int64_t>());
  a.fingerprint = fingerprint(a.labels);
  return a;
}

}  // namespace

static json silenceJson(const Silence& s) {
  json m = json::array();
  for (const auto& x : s.matchers) m.push_back(x.toString());
  return {{"id", s.id}, {"matchers", m}, {"starts_at_ms", toUnixMillis(s.starts_at)}, {"ends_at_ms", toUnixMillis(s.ends_at)},
          {"created_by", s.created_by}, {"comment", s.comment}};
}

AlertEngine::AlertEngine(const AlertingConfig& config, Scheduler& scheduler, RandomSource& random,
                         prometheus::Registry& registry, std::unique_ptr<HttpClient> http)
    : config_(config), guarded_(std::make_unique<GuardedScheduler>(scheduler, mu_)) {
  const std::string outbox = config.state_dir.empty() ? "" : config.state_dir + "/outbox.json";
  state_file_ = config.state_dir.empty() ? "" : config.state_dir + "/alerts.json";
  deliverer_ = std::make_unique<Deliverer>(scheduler.time(), random, std::move(http), outbox, config.retry, registry,
                                           config.state_key);
  rules_ = std::make_unique<RuleEngine>(scheduler.time(), [this](const AlertUpdate& u) {
    dispatcher_->update(u);
    state_dirty_ = true;
  });
  dispatcher_ = std::make_unique<Dispatcher>(*guarded_, [this](const Notification& n) {
    // Crash safety, in this order: the outbox entry reaches the disk (a kill after this point
    // delivers it on the next start, and loadState() counts it as sent); the group's new "sent"
    // state reaches the disk; only then may the delivery thread send it (so a delivered entry
    // never leaves the outbox before the state that records it is saved).
    EncodeContext ctx{config_.external_url, guarded_->time().wallNow()};
    deliverer_->enqueue(n, ctx);
    spdlog::info("alert group {} ({}, {} alert(s)) queued for {}", n.group_key, n.firing ? "firing" : "resolved",
                 n.alerts.size(), n.receiver);
    failpoint("alerts.queued");
    state_dirty_ = true;
    saveState();
    failpoint("alerts.saved");
    deliverer_->release();
  });
  alerts_gauge_ = &prometheus::BuildGauge()
                       .Name("greenlight_alerts")
                       .Help("Alert instances by rule and state (pending, firing)")
                       .Register(registry);
}

StatusOr<std::unique_ptr<AlertEngine>> AlertEngine::create(const AlertingConfig& config, Scheduler& scheduler,
                                                           RandomSource& random, prometheus::Registry& registry,
                                                           std::unique_ptr<HttpClient> http) {
  if (!config.state_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(config.state_dir, ec);
    if (ec) return Unavailable("alerting.state_dir " + config.state_dir + ": " + ec.message());
    std::filesystem::permissions(config.state_dir, std::filesystem::perms::owner_all, ec);
  } else {
    spdlog::warn("alerting.state_dir is not set: alert state and undelivered notifications are lost on restart");
  }
  std::unique_ptr<AlertEngine> e(new AlertEngine(config, scheduler, random, registry, std::move(http)));
  std::lock_guard<std::recursive_mutex> lock(e->mu_);
  e->apply(config);
  if (Status s = e->deliverer_->load(); !s.ok()) return s;
  if (Status s = e->loadState(); !s.ok()) return s;
  e->deliverer_->start();
  e->tick_timer_ = e->guarded_->scheduleAfter(config.evaluation_interval, [p = e.get()] { p->onTick(); });
  return e;
}

AlertEngine::~AlertEngine() { stop(); }

void AlertEngine::stop() {
  {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    if (tick_timer_) guarded_->cancel(tick_timer_);
    tick_timer_ = 0;
    saveState();
  }
  deliverer_->stop();
}

void AlertEngine::apply(const AlertingConfig& config) {
  config_ = config;
  std::map<std::string, std::shared_ptr<const Notifier>> receivers;
  for (const auto& r : config.receivers) receivers[r.name] = makeNotifier(r);
  deliverer_->setReceivers(std::move(receivers));
  dispatcher_->setConfig(config.dispatch);
  rules_->setRules(config.rules);
  // The dead-man's switch: always firing while Greenlight runs; turned off by a reload, it resolves.
  const Labels watchdog = {{"alertname", "Watchdog"}, {"severity", "none"}};
  const WallTime now = guarded_->time().wallNow();
  if (config.watchdog && !watchdog_started_) {
    watchdog_started_ = true;
    dispatcher_->update(AlertUpdate{watchdog, {{"summary", "Greenlight is alive: this alert always fires"}}, true, now, {}, 1});
  } else if (!config.watchdog && watchdog_started_) {
    watchdog_started_ = false;
    dispatcher_->update(AlertUpdate{watchdog, {}, false, now, now, 0});
  }
  updateGauges();
}

void AlertEngine::reconfigure(const AlertingConfig& config) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (config.state_dir != config_.state_dir) {
    spdlog::warn("alerting.state_dir changed: it takes effect at the next restart");
  }
  apply(config);
  saveState();
}

void AlertEngine::observe(const Observation& o) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  rules_->observe(o);
  if (state_dirty_) {
    saveState();
    updateGauges();
  }
}

void AlertEngine::raise(const std::string& event, const Labels& labels, const Labels& annotations) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  rules_->raise(event, labels, annotations);
  if (state_dirty_) saveState();
  updateGauges();
}

void AlertEngine::onTick() {
  rules_->tick();
  if (state_dirty_) saveState();
  updateGauges();
  if (!stopped_) tick_timer_ = guarded_->scheduleAfter(config_.evaluation_interval, [this] { onTick(); });
}

void AlertEngine::updateGauges() {
  std::map<std::pair<std::string, std::string>, int> counts;
  for (const auto& v : rules_->snapshot()) ++counts[{v.rule, phaseName(v.phase)}];
  for (const auto& r : config_.rules) {
    for (const char* state : {"pending", "firing"}) counts.try_emplace({r.name, state}, 0);
  }
  for (auto& [key, g] : gauges_) {
    if (!counts.count(key)) g->Set(0);
  }
  for (const auto& [key, n] : counts) {
    auto& g = gauges_[key];
    if (!g) g = &alerts_gauge_->Add({{"alertname", key.first}, {"state", key.second}});
    g->Set(n);
  }
}

std::string AlertEngine::addSilence(Silence s) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::string id = dispatcher_->addSilence(std::move(s));
  saveState();
  return id;
}

bool AlertEngine::expireSilence(const std::string& id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  const bool ok = dispatcher_->expireSilence(id, guarded_->time().wallNow());
  if (ok) saveState();
  return ok;
}

std::vector<Silence> AlertEngine::silences() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return dispatcher_->silences();
}

std::vector<AlertView> AlertEngine::alerts() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::vector<AlertView> out;
  for (auto& v : rules_->snapshot()) {
    MuteState m = dispatcher_->muted(v.labels);
    out.push_back({std::move(v), std::move(m)});
  }
  return out;
}

void AlertEngine::saveState() {
  state_dirty_ = false;
  if (state_file_.empty()) return;
  json firing = json::array();
  for (const auto& f : rules_->firing()) {
    firing.push_back({{"rule", f.rule}, {"series", labelsJson(f.series)}, {"severity", f.severity},
                      {"starts_at_ms", toUnixMillis(f.starts_at)}, {"value", f.value}});
  }
  json groups = json::array();
  for (const auto& g : dispatcher_->groups()) {
    json alerts = json::array();
    for (const auto& a : g.alerts) alerts.push_back(alertJson(a));
    json sent = json::object();
    for (const auto& [fp, firing_sent] : g.sent) sent[fp] = firing_sent;
    groups.push_back({{"route", g.route}, {"receiver", g.receiver}, {"labels", labelsJson(g.labels)},
                      {"alerts", alerts}, {"sent", sent}, {"last_notified_ms", toUnixMillis(g.last_notified)}});
  }
  json silences = json::array();
  for (const auto& s : dispatcher_->silences()) silences.push_back(silenceJson(s));
  const json j = {{"version", 1}, {"firing", firing}, {"groups", groups}, {"silences", silences}};
  if (Status s = writeStateFile(state_file_, j.dump(), config_.state_key, "alerts"); !s.ok()) {
    spdlog::error("alerting: cannot save state to {}: {}", state_file_, s.message());
  }
}

Status AlertEngine::loadState() {
  if (state_file_.empty() || !std::filesystem::exists(state_file_)) return Status::Ok();
  auto text = readStateFile(state_file_, config_.state_key, "alerts");
  if (!text.ok()) return text.status();
  std::vector<FiringRecord> firing;
  std::vector<GroupRecord> groups;
  std::vector<Silence> silences;
  try {
    const json j = json::parse(text.value());
    for (const auto& f : j.at("firing")) {
      firing.push_back({f.at("rule").get<std::string>(), labelsFrom(f.at("series")), f.at("severity").get<std::string>(),
                        fromUnixMillis(f.at("starts_at_ms").get<int64_t>()), f.at("value").get<double>()});
    }
    for (const auto& g : j.at("groups")) {
      GroupRecord r;
      r.route = g.at("route").get<std::string>();
      r.receiver = g.at("receiver").get<std::string>();
      r.labels = labelsFrom(g.at("labels"));
      for (const auto& a : g.at("alerts")) r.alerts.push_back(alertFrom(a));
      for (auto it = g.at("sent").begin(); it != g.at("sent").end(); ++it) r.sent[it.key()] = it.value().get<bool>();
      r.last_notified = fromUnixMillis(g.at("last_notified_ms").get<int64_t>());
      groups.push_back(std::move(r));
    }
    for (const auto& s : j.at("silences")) {
      Silence x;
      x.id = s.at("id").get<std::string>();
      for (const auto& m : s.at("matchers")) {
        auto parsed = parseMatcher(m.get<std::string>());
        if (!parsed.ok()) throw std::runtime_error(parsed.status().message());
        x.matchers.push_back(parsed.value());
      }
      x.starts_at = fromUnixMillis(s.at("starts_at_ms").get<int64_t>());
      x.ends_at = fromUnixMillis(s.at("ends_at_ms").get<int64_t>());
      x.created_by = s.value("created_by", "");
      x.comment = s.value("comment", "");
      silences.push_back(std::move(x));
    }
  } catch (const std::exception& e) {
    return InvalidArgument(state_file_ + ": not a valid alert state file (" + e.what() + "); move it away to start empty");
  }
  rules_->restore(firing);
  dispatcher_->restore(groups, std::move(silences));
  spdlog::info("alerting: restored {} firing alert(s) and {} group(s) from {}", firing.size(), groups.size(), state_file_);
  // A kill between queueing a notification and saving this file: the outbox is the newer record.
  size_t queued = 0;
  for (const auto& e : deliverer_->entries()) {
    if (!e.group_key.empty() && dispatcher_->restoreQueued(e.group_key, e.sent, e.created)) ++queued;
  }
  if (queued > 0) {
    spdlog::info("alerting: {} queued notification(s) were newer than {}; counted as sent", queued, state_file_);
    saveState();
  }
  return Status::Ok();
}

}  // namespace greenlight::alerts
