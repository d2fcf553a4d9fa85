#include "greenlight/controller/controller.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "greenlight/common/files.h"
#include "greenlight/common/scheduler.h"
#include "greenlight/signals/outcome_window.h"
#include "command_runner.h"
#include "http_call.h"
#include "rollout_json.h"

namespace greenlight::controller {

using nlohmann::json;

namespace {

// One instant query; the first sample's value, nullopt for an empty result.
StatusOr<std::optional<double>> prometheusQuery(const std::string& base, const std::string& query, Duration timeout) {
  const HttpCall call = httpCall(base + "/api/v1/query?query=" + urlEncode(query), timeout);
  if (call.status == 0) return Unavailable("Prometheus: " + call.error);
  const std::string& body = call.body;
  const long status = call.status;
  try {
    const json j = json::parse(body);
    if (j.value("status", "") != "success") {
      return InvalidArgument("Prometheus HTTP " + std::to_string(status) + ": " + j.value("error", body.substr(0, 200)));
    }
    const json& data = j.at("data");
    const json& result = data.at("result");
    if (data.at("resultType") == "scalar") return std::optional<double>(std::stod(result.at(1).get<std::string>()));
    if (data.at("resultType") != "vector") return InvalidArgument("Prometheus: expected an instant vector or scalar");
    if (result.empty()) return std::optional<double>();
    return std::optional<double>(std::stod(result.at(0).at("value").at(1).get<std::string>()));
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("Prometheus: unreadable answer (") + e.what() + ")");
  }
}

bool holds(double v, const std::string& op, double t) {
  if (op == "<") return v < t;
  if (op == "<=") return v <= t;
  if (op == ">") return v > t;
  if (op == ">=") return v >= t;
  if (op == "==") return v == t;
  return v != t;
}

Verdict worse(Verdict a, Verdict b) {
  if (a == Verdict::kFail || b == Verdict::kFail) return Verdict::kFail;
  if (a == Verdict::kInconclusive || b == Verdict::kInconclusive) return Verdict::kInconclusive;
  return Verdict::kPass;
}

// POSTs to a gate; 2xx pass, another status fail, no answer per the gate's on_timeout.
Verdict askGate(const GateSpec& g, const json& body, std::string* detail) {
  const std::string payload = body.dump();
  const HttpCall call = httpCall(g.url, g.timeout, {"Content-Type: application/json"}, &payload);
  if (call.status == 0) {
    *detail = "no answer: " + call.error;
    return g.on_timeout == GateTimeout::kFail ? Verdict::kFail
           : g.on_timeout == GateTimeout::kPass ? Verdict::kPass
                                                : Verdict::kInconclusive;
  }
  *detail = "HTTP " + std::to_string(call.status) + (call.body.empty() ? "" : ": " + call.body.substr(0, 200));
  return call.status >= 200 && call.status < 300 ? Verdict::kPass : Verdict::kFail;
}

Verdict noData(NoDataPolicy p) {
  return p == NoDataPolicy::kFail ? Verdict::kFail : p == NoDataPolicy::kPass ? Verdict::kPass : Verdict::kInconclusive;
}

}  // namespace

struct Controller::Impl {
  struct Svc {
    ServiceSpec spec;
    RolloutState state;
    std::unique_ptr<Router> router;
    std::array<ColorCounters, 2> baseline{};
    bool have_baseline = false;
    std::array<ColorCounters, 2> mirror_baseline{};  // the answers to mirrored copies, likewise
    bool have_mirror_baseline = false;
    bool restored = false;  // state came from the state file (a restart)
    // Blue, green as the router last confirmed them (the state's own weight is what the machine
    // asked for, which a failed router change leaves unapplied): the audit log's "before".
    std::array<int, 2> weights{100, 0};
    std::map<std::string, prometheus::Gauge*> phase_gauges;
    prometheus::Gauge* weight[2] = {nullptr, nullptr};
    prometheus::Gauge* paused = nullptr;
    std::map<std::string, prometheus::Counter*> analysis;
    prometheus::Counter* rollbacks = nullptr;
    prometheus::Counter* promotions = nullptr;
    prometheus::Counter* starts = nullptr;
    prometheus::Histogram* duration = nullptr;       // start to promoted or rolled back
    prometheus::Histogram* rollback_time = nullptr;  // rollback decided to the router confirming 0%
  };

  ControllerConfig config;
  const TimeSource& time;
  EventSink events;
  ProbeRunner probe_runner;
  TimerQueue timers;
  std::unique_ptr<AuditLog> audit;
  std::vector<std::unique_ptr<Svc>> svcs;
  std::string state_file;
  std::thread thread;
  std::mutex mu;  // guards `stopping`, wakes the loop; svcs are touched on the loop thread only
  std::condition_variable cv;
  bool stopping = false;
  bool woken = false;
  std::mutex workers_mu;
  std::vector<std::thread> workers;  // start/stop commands in flight (each bounded by its timeout)
  mutable std::mutex view_mu;
  std::vector<ServiceView> view;

  Impl(ControllerConfig c, const TimeSource& t, EventSink e, ProbeRunner p)
      : config(std::move(c)), time(t), events(std::move(e)), probe_runner(std::move(p)), timers(t) {
    timers.setWakeup([this] {
      std::lock_guard<std::mutex> lock(mu);
      woken = true;
      cv.notify_all();
    });
  }

  struct Families {
    prometheus::Family<prometheus::Gauge>* phase = nullptr;
    prometheus::Family<prometheus::Gauge>* weight = nullptr;
    prometheus::Family<prometheus::Gauge>* paused = nullptr;
    prometheus::Family<prometheus::Counter>* analysis = nullptr;
    prometheus::Family<prometheus::Counter>* rollbacks = nullptr;
    prometheus::Family<prometheus::Counter>* promotions = nullptr;
    prometheus::Family<prometheus::Counter>* starts = nullptr;
    prometheus::Family<prometheus::Histogram>* duration = nullptr;
    prometheus::Family<prometheus::Histogram>* rollback_time = nullptr;
  } fam;

  void buildMetrics(prometheus::Registry& registry) {
    fam.phase = &prometheus::BuildGauge().Name("greenlight_rollout_phase")
                     .Help("1 for the phase each service's rollout is in").Register(registry);
    fam.weight = &prometheus::BuildGauge().Name("greenlight_rollout_weight")
                      .Help("Traffic weight per colour as the controller last set it").Register(registry);
    fam.paused = &prometheus::BuildGauge().Name("greenlight_rollout_paused").Help("1 while paused").Register(registry);
    fam.analysis = &prometheus::BuildCounter().Name("greenlight_rollout_analysis_total")
                        .Help("Analysis measurements by verdict").Register(registry);
    fam.rollbacks = &prometheus::BuildCounter().Name("greenlight_rollout_rollbacks_total")
                         .Help("Rollouts rolled back").Register(registry);
    fam.promotions = &prometheus::BuildCounter().Name("greenlight_rollout_promotions_total")
                          .Help("Rollouts promoted").Register(registry);
    fam.starts = &prometheus::BuildCounter().Name("greenlight_rollout_starts_total")
                      .Help("Rollouts started (dashboard annotations)").Register(registry);
    fam.duration = &prometheus::BuildHistogram().Name("greenlight_rollout_duration_seconds")
                        .Help("From start to promoted or rolled back").Register(registry);
    fam.rollback_time = &prometheus::BuildHistogram().Name("greenlight_rollout_rollback_seconds")
                             .Help("From the rollback decision (abort, failed analysis) to the router confirming 0% on the failed colour")
                             .Register(registry);
    for (auto& s : svcs) addMetrics(*s);
  }

  void addMetrics(Svc& svc) {
    Svc* s = &svc;
    const std::string& n = s->spec.rollout.service;
    for (int p = 0; p < 9; ++p) {
      const char* name = phaseName(static_cast<RolloutPhase>(p));
      s->phase_gauges[name] = &fam.phase->Add({{"service", n}, {"phase", name}});
    }
    s->weight[0] = &fam.weight->Add({{"service", n}, {"color", "blue"}});
    s->weight[1] = &fam.weight->Add({{"service", n}, {"color", "green"}});
    s->paused = &fam.paused->Add({{"service", n}});
    for (const char* v : {"pass", "fail", "inconclusive"}) s->analysis[v] = &fam.analysis->Add({{"service", n}, {"verdict", v}});
    s->rollbacks = &fam.rollbacks->Add({{"service", n}});
    s->promotions = &fam.promotions->Add({{"service", n}});
    s->starts = &fam.starts->Add({{"service", n}});
    s->duration = &fam.duration->Add({{"service", n}}, prometheus::Histogram::BucketBoundaries{10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200});
    s->rollback_time = &fam.rollback_time->Add({{"service", n}}, prometheus::Histogram::BucketBoundaries{
                                                   0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5});
  }

  // A service taken out of the config: its series go too (a dashboard should not show it).
  void removeMetrics(Svc& s) {
    for (auto& [name, g] : s.phase_gauges) fam.phase->Remove(g);
    fam.weight->Remove(s.weight[0]);
    fam.weight->Remove(s.weight[1]);
    fam.paused->Remove(s.paused);
    for (auto& [v, c] : s.analysis) fam.analysis->Remove(c);
    fam.rollbacks->Remove(s.rollbacks);
    fam.promotions->Remove(s.promotions);
    fam.starts->Remove(s.starts);
    fam.duration->Remove(s.duration);
    fam.rollback_time->Remove(s.rollback_time);
  }

  static std::unique_ptr<Router> makeRouter(const ServiceSpec& spec) {
    return spec.router == RouterKind::kBuiltin ? makeBuiltinRouter(spec.builtin, spec.router_timeout)
                                               : makeHaproxyRouter(spec.haproxy, spec.router_timeout);
  }

  // Blue and green as a state implies them: the candidate at its weight, the stable the rest.
  static std::array<int, 2> weightsOf(const RolloutState& st) {
    std::array<int, 2> w{};
    w[static_cast<int>(st.candidate())] = st.weight;
    w[static_cast<int>(st.stable)] = 100 - st.weight;
    return w;
  }

  std::unique_ptr<Svc> makeSvc(const ServiceSpec& spec) {
    auto s = std::make_unique<Svc>();
    s->spec = spec;
    s->state.service = spec.rollout.service;
    s->state.stable = spec.initial_stable;
    s->state.stable_release = spec.initial_release;
    s->router = makeRouter(spec);
    s->weights = weightsOf(s->state);
    return s;
  }

  static bool sameTraffic(const ServiceSpec& a, const ServiceSpec& b) {
    return a.router == b.router && a.builtin.socket == b.builtin.socket && a.builtin.service == b.builtin.service &&
           a.haproxy.socket == b.haproxy.socket && a.haproxy.address == b.haproxy.address &&
           a.haproxy.backend == b.haproxy.backend && a.haproxy.servers == b.haproxy.servers &&
           a.router_timeout == b.router_timeout && a.endpoints[0] == b.endpoints[0] && a.endpoints[1] == b.endpoints[1];
  }

  // A reloaded `rollouts:` section. All or nothing: a service in an active rollout may change its
  // strategy, analysis, gates and commands (they apply from its next step), but not be removed
  // or moved to another router or other instances while traffic is split.
  Status reconfigure(const ControllerConfig& next) {
    std::vector<std::string> refused;
    std::map<std::string, const ServiceSpec*> wanted;
    for (const auto& spec : next.services) wanted[spec.rollout.service] = &spec;
    for (const auto& s : svcs) {
      auto it = wanted.find(s->spec.rollout.service);
      if (!s->state.active()) continue;
      if (it == wanted.end()) {
        refused.push_back(s->spec.rollout.service + ": cannot be removed while its rollout is " + phaseName(s->state.phase));
      } else if (!sameTraffic(s->spec, *it->second)) {
        refused.push_back(s->spec.rollout.service + ": router and instances cannot change while its rollout is " +
                          phaseName(s->state.phase));
      }
    }
    if (!refused.empty()) {
      std::string why = "rollouts: ";
      for (size_t i = 0; i < refused.size(); ++i) why += (i ? "; " : "") + refused[i];
      return FailedPrecondition(why + " (abort or finish it first)");
    }
    if (next.state_dir != config.state_dir || next.audit_log != config.audit_log) {
      spdlog::warn("rollouts.state_dir and rollouts.audit_log changes take effect at the next restart");
    }
    std::vector<std::unique_ptr<Svc>> kept;
    for (auto& s : svcs) {
      auto it = wanted.find(s->spec.rollout.service);
      if (it == wanted.end()) {
        spdlog::info("rollout {}: removed from the config", s->spec.rollout.service);
        removeMetrics(*s);
        continue;
      }
      if (!sameTraffic(s->spec, *it->second)) {
        s->router = makeRouter(*it->second);
        s->have_baseline = s->have_mirror_baseline = false;
      }
      s->spec = *it->second;
      wanted.erase(it);
      kept.push_back(std::move(s));
    }
    for (const auto& spec : next.services) {
      if (!wanted.count(spec.rollout.service)) continue;
      auto s = makeSvc(spec);
      addMetrics(*s);
      updateGauges(*s);
      spdlog::info("rollout {}: added ({} on {})", spec.rollout.service, spec.initial_release, colorName(spec.initial_stable));
      kept.push_back(std::move(s));
    }
    svcs = std::move(kept);
    config.services = next.services;
    config.tick = next.tick;
    if (Status st = persist(); !st.ok()) spdlog::error("rollout state: {}", st.message());
    publish();
    return Status::Ok();
  }

  void updateGauges(Svc& s) {
    for (auto& [name, g] : s.phase_gauges) g->Set(name == phaseName(s.state.phase) ? 1 : 0);
    const std::array<int, 2> w = weightsOf(s.state);
    s.weight[0]->Set(w[0]);
    s.weight[1]->Set(w[1]);
    s.paused->Set(s.state.paused ? 1 : 0);
  }

  void publish() {
    std::vector<ServiceView> v;
    for (const auto& s : svcs) v.push_back({s->spec.rollout.service, s->router->describe(), s->state, s->spec.rollout.strategy});
    std::lock_guard<std::mutex> lock(view_mu);
    view = std::move(v);
  }

  Status persist() {
    if (state_file.empty()) return Status::Ok();
    json j = json::object();
    for (const auto& s : svcs) j[s->spec.rollout.service] = stateToJson(s->state);
    return writeStateFile(state_file, json{{"version", 1}, {"services", j}}.dump(), config.state_key, "rollouts");
  }

  Status load() {
    if (state_file.empty() || !std::filesystem::exists(state_file)) return Status::Ok();
    auto text = readStateFile(state_file, config.state_key, "rollouts");
    if (!text.ok()) return text.status();
    try {
      const json j = json::parse(text.value()).at("services");
      for (auto& s : svcs) {
        if (!j.contains(s->spec.rollout.service)) continue;
        auto st = stateFromJson(j.at(s->spec.rollout.service));
        if (!st.ok()) return InvalidArgument(state_file + ": " + st.status().message());
        s->state = st.value();
        s->restored = true;
      }
    } catch (const std::exception& e) {
      return InvalidArgument(state_file + ": not a valid rollout state file (" + e.what() + ")");
    }
    return Status::Ok();
  }

  void auditLine(Svc& s, const std::string& actor, const std::string& action, const std::string& detail,
                 std::optional<std::array<int, 2>> before = std::nullopt, std::optional<std::array<int, 2>> after = std::nullopt) {
    spdlog::info("rollout {}: {} ({}) by {}", s.spec.rollout.service, action, detail, actor);
    if (!audit) return;
    const std::string release = s.state.candidate_release.empty() ? s.state.stable_release : s.state.candidate_release;
    if (Status st = audit->append({actor, action, s.spec.rollout.service, release, detail, before, after}); !st.ok()) {
      spdlog::error("audit log: {}", st.message());
    }
  }

  // Runs the machine on one event and carries out what it asks, feeding results back.
  std::string dispatch(Svc& s, Event first) {
    std::deque<Event> queue{first};
    std::string error;
    bool first_event = true;
    while (!queue.empty()) {
      Event e = queue.front();
      queue.pop_front();
      const RolloutState before = s.state;
      Transition t = transition(s.spec.rollout, s.state, e, time.wallNow());
      if (!t.error.empty()) {
        if (first_event) error = t.error;
        first_event = false;
        continue;
      }
      first_event = false;
      s.state = t.state;
      if (s.state.phase != before.phase) {
        spdlog::info("rollout {}: {} -> {}{}", s.spec.rollout.service, phaseName(before.phase), phaseName(s.state.phase),
                     s.state.reason.empty() ? "" : " (" + s.state.reason + ")");
        const double since_start = std::chrono::duration<double>(time.wallNow() - s.state.started_at).count();
        if (!before.active() && s.state.active()) {
          s.starts->Increment();  // out of a resting phase: a new rollout began
        }
        if (s.state.phase == RolloutPhase::kRolledBack) {
          s.rollbacks->Increment();
          s.duration->Observe(since_start);
          s.rollback_time->Observe(std::chrono::duration<double>(time.wallNow() - before.phase_since).count());
        }
        if (s.state.phase == RolloutPhase::kPromoted) {
          s.promotions->Increment();
          s.duration->Observe(since_start);
        }
        if (s.state.phase == RolloutPhase::kPromoted || s.state.phase == RolloutPhase::kRolledBack) {
          if (auto g = s.spec.gates.find("post-rollout"); g != s.spec.gates.end()) {
            std::string detail;
            askGate(g->second, gateBody(s, "post-rollout", s.state.stable), &detail);
            spdlog::info("rollout {}: post-rollout gate told ({})", s.spec.rollout.service, detail);
          }
        }
      }
      // The new state is on disk before any of its effects happen.
      if (Status st = persist(); !st.ok()) spdlog::error("rollout state: {}", st.message());
      for (const Effect& fx : t.effects) {
        if (auto follow = execute(s, fx, e.actor)) queue.push_back(*follow);
      }
      updateGauges(s);
    }
    publish();
    return error;
  }

  std::optional<Event> execute(Svc& s, const Effect& fx, const std::string& actor) {
    switch (fx.kind) {
      case EffectKind::kSetWeights: {
        Event r(EventKind::kRouted);
        const Status st = s.router->setWeights(fx.color, fx.weight);
        r.ok = st.ok();
        r.detail = st.message();
        const std::array<int, 2> before = s.weights;
        std::array<int, 2> after{};
        after[static_cast<int>(fx.color)] = fx.weight;
        after[static_cast<int>(other(fx.color))] = 100 - fx.weight;
        if (st.ok()) s.weights = after;
        auto pct = [](int a, int b) { return std::to_string(a) + "% -> " + std::to_string(b) + "%"; };
        auditLine(s, "controller", "set_weights",
                  "blue " + pct(before[0], after[0]) + ", green " + pct(before[1], after[1]) +
                      (st.ok() ? "" : " FAILED: " + st.message()),
                  before, st.ok() ? after : before);
        if (st.ok()) takeBaseline(s);
        return r;
      }
      case EffectKind::kSetMirror: {
        const Status st = s.router->setMirror(fx.weight);
        auditLine(s, "controller", "set_mirror",
                  std::to_string(fx.weight) + "% of the requests copied to " + colorName(fx.color) +
                      (st.ok() ? "" : " FAILED: " + st.message()));
        if (st.ok()) {
          if (fx.weight > 0) {
            auto c = s.router->mirroredCounters();
            s.have_mirror_baseline = c.ok();
            if (c.ok()) s.mirror_baseline = c.value();
          }
          return std::nullopt;
        }
        Event r(EventKind::kRouted);  // a router change that failed: the machine rolls back
        r.ok = false;
        r.detail = st.message();
        return r;
      }
      case EffectKind::kCheckReady: return checkReady(s, fx.color);
      case EffectKind::kGate: {
        Event r(EventKind::kGated);
        r.gate = fx.name;
        r.verdict = askGate(s.spec.gates.at(fx.name), gateBody(s, fx.name, fx.color), &r.detail);
        // A confirm-promotion gate that says no means "not yet": ask again, do not roll back.
        if (fx.name == "confirm-promotion" && r.verdict == Verdict::kFail && r.detail.rfind("HTTP", 0) == 0) {
          r.verdict = Verdict::kInconclusive;
        }
        return r;
      }
      case EffectKind::kPreview: return preview(s, fx.color);
      case EffectKind::kMeasure: return measure(s, fx.color, fx.name == "mirrored");
      case EffectKind::kDeploy:
        if (s.spec.deploy_start.empty()) {
          Event d(EventKind::kDeployed);
          d.detail = "external: deployed by its pipeline";
          return d;
        }
        runAsync(s, s.spec.deploy_start, fx.color, fx.detail, true);
        return std::nullopt;
      case EffectKind::kStopColor:
        if (s.spec.deploy_stop.empty()) {
          spdlog::info("rollout {}: {} on {} may be stopped ({}): deployed externally, left to its deployer",
                       s.spec.rollout.service, fx.detail, colorName(fx.color), fx.name);
          return std::nullopt;
        }
        runAsync(s, s.spec.deploy_stop, fx.color, fx.detail, false);
        return std::nullopt;
      case EffectKind::kRaise:
        if (events) {
          events(fx.name,
                 {{"service", s.spec.rollout.service},
                  {"release", s.state.candidate_release.empty() ? s.state.stable_release : s.state.candidate_release},
                  {"color", colorName(fx.color)}},
                 {{"summary", s.spec.rollout.service + ": " + fx.name + (fx.detail.empty() ? "" : ": " + fx.detail)}});
        }
        return std::nullopt;
      case EffectKind::kAudit: auditLine(s, actor, fx.name, fx.detail); return std::nullopt;
    }
    return std::nullopt;
  }

  // Runs a start/stop command off the loop (deploys take minutes; abort must not wait for
  // them); a start's outcome comes back as a kDeployed event.
  void runAsync(Svc& s, const std::string& tmpl, Color c, const std::string& release, bool is_start) {
    const auto& eps = s.spec.endpoints[static_cast<int>(c)];
    const std::string port = eps.empty() ? "" : eps.front().substr(eps.front().rfind(':') + 1);
    const std::map<std::string, std::string> values = {
        {"service", s.spec.rollout.service}, {"color", colorName(c)}, {"release", release}, {"port", port}};
    const std::string cmd = expandCommand(tmpl, values);
    std::map<std::string, std::string> env;
    for (const auto& [k, v] : values) {
      std::string up = k;
      for (auto& ch : up) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      env["GREENLIGHT_" + up] = v;
    }
    const std::string service = s.spec.rollout.service;
    const Duration timeout = s.spec.deploy_timeout;
    spdlog::info("rollout {}: running {} command: {}", service, is_start ? "start" : "stop", cmd);
    std::lock_guard<std::mutex> lock(workers_mu);
    workers.emplace_back([this, cmd, env, timeout, service, is_start] {
      const CommandResult r = runCommand(cmd, env, timeout);
      std::string tail = r.output.size() > 2000 ? r.output.substr(r.output.size() - 2000) : r.output;
      while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
      spdlog::log(r.ok ? spdlog::level::info : spdlog::level::warn, "rollout {}: {} command {} ({}){}{}", service,
                  is_start ? "start" : "stop", r.ok ? "succeeded" : "failed",
                  r.timed_out ? "timed out" : "exit " + std::to_string(r.exit_code), tail.empty() ? "" : ":\n", tail);
      if (!is_start) return;
      timers.scheduleAt(MonoTime::min(), [this, service, r] {
        for (auto& svc : svcs) {
          if (svc->spec.rollout.service != service) continue;
          Event d(EventKind::kDeployed);
          d.ok = r.ok;
          d.detail = r.ok ? "start command succeeded"
                          : (r.timed_out ? std::string("start command timed out") : "start command exit " + std::to_string(r.exit_code));
          dispatch(*svc, d);
        }
      });
    });
  }

  void takeBaseline(Svc& s) {
    auto c = s.router->counters();
    s.have_baseline = c.ok();
    if (c.ok()) s.baseline = c.value();
  }

  json gateBody(const Svc& s, const std::string& gate, Color c) const {
    return {{"service", s.spec.rollout.service}, {"release", s.state.candidate_release.empty() ? s.state.stable_release : s.state.candidate_release},
            {"color", colorName(c)}, {"gate", gate}, {"phase", phaseName(s.state.phase)}, {"weight", s.state.weight},
            {"reason", s.state.reason}};
  }

  Event checkReady(Svc& s, Color c) {
    Event r(EventKind::kReady);
    for (const auto& ep : s.spec.endpoints[static_cast<int>(c)]) {
      const HttpCall call = httpCall("http://" + ep + s.spec.ready_path, s.spec.ready_timeout);
      if (call.status < 200 || call.status >= 300) {
        r.ok = false;
        r.detail = ep + s.spec.ready_path + ": " + (call.status ? "HTTP " + std::to_string(call.status) : call.error);
        return r;
      }
    }
    return r;
  }

  Event preview(Svc& s, Color c) {
    Event r(EventKind::kPreviewed);
    const int n = s.spec.rollout.strategy.preview_requests;
    int bad = 0;
    std::string last;
    for (int i = 0; i < n; ++i) {
      const HttpCall call = httpCall(s.spec.preview_url, s.spec.ready_timeout, {s.spec.preview_header + ": " + colorName(c)});
      if (call.status < 200 || call.status >= 300) {
        ++bad;
        last = call.status ? "HTTP " + std::to_string(call.status) : call.error;
      }
    }
    r.ok = bad == 0;
    r.detail = bad ? std::to_string(bad) + " of " + std::to_string(n) + " preview requests failed (" + last + ")"
                   : std::to_string(n) + " preview requests answered 2xx";
    if (!s.spec.analysis_probes.empty()) {
      std::string detail;
      const Verdict v = runProbes(s, c, &detail);
      r.detail += detail;
      if (v != Verdict::kPass) r.ok = false;
    }
    return r;
  }

  // The analysis probes, each run once through preview routing to colour c; the worst verdict.
  Verdict runProbes(Svc& s, Color c, std::string* detail) {
    Verdict worst = Verdict::kPass;
    for (const auto& name : s.spec.analysis_probes) {
      std::optional<Controller::ProbeOutcome> o;
      if (probe_runner) o = probe_runner(name, s.spec.preview_header, colorName(c));
      if (!o) {
        worst = worse(worst, Verdict::kInconclusive);
        *detail += "; probe " + name + " did not run";
      } else if (o->success) {
        *detail += "; probe " + name + " passed";
      } else {
        worst = Verdict::kFail;
        *detail += "; probe " + name + " failed: " + o->message;
      }
    }
    return worst;
  }

  // The q-quantile of the colour's upstream latency between two histogram readings; negative
  // when the router has no histogram or nothing was answered in between.
  static double latencyQuantile(const ColorCounters& a, const ColorCounters& b, double q) {
    if (b.latency_le.empty() || b.latency_cumulative.size() != b.latency_le.size() + 1) return -1;
    const bool same = a.latency_le == b.latency_le && a.latency_cumulative.size() == b.latency_cumulative.size();
    std::vector<uint64_t> bins(b.latency_cumulative.size());
    uint64_t prev = 0;
    for (size_t i = 0; i < bins.size(); ++i) {
      const uint64_t base = same ? std::min(a.latency_cumulative[i], b.latency_cumulative[i]) : 0;
      const uint64_t cum = b.latency_cumulative[i] - base;
      bins[i] = cum >= prev ? cum - prev : 0;
      prev = std::max(prev, cum);
    }
    return signals::bucketQuantile(b.latency_le, bins, q);
  }

  // `mirrored`: the colour's answers to mirrored copies (pre-promotion), not its own traffic; the
  // Prometheus queries, which are about a colour's own traffic, wait for the shift.
  Event measure(Svc& s, Color c, bool mirrored) {
    // The rollback gate: a system outside (an incident tool, a person's button) may stop it.
    if (auto g = s.spec.gates.find("rollback"); g != s.spec.gates.end()) {
      std::string detail;
      if (askGate(g->second, gateBody(s, "rollback", c), &detail) == Verdict::kPass && detail.rfind("HTTP", 0) == 0) {
        Event abort(EventKind::kAbort);
        abort.actor = "rollback gate";
        abort.detail = detail;
        return abort;
      }
    }
    Event r(EventKind::kMeasured);
    auto now = mirrored ? s.router->mirroredCounters() : s.router->counters();
    std::array<ColorCounters, 2>& baseline = mirrored ? s.mirror_baseline : s.baseline;
    bool& have_baseline = mirrored ? s.have_mirror_baseline : s.have_baseline;
    if (!now.ok()) {
      r.verdict = Verdict::kInconclusive;
      r.detail = "router counters: " + now.status().message();
    } else if (!have_baseline) {
      baseline = now.value();
      have_baseline = true;
      r.verdict = Verdict::kInconclusive;
      r.detail = "first look at the counters: no interval to compare yet";
    } else {
      const ColorCounters a = baseline[static_cast<int>(c)];  // a copy: the baseline moves on below
      const auto& b = now.value()[static_cast<int>(c)];
      uint64_t total = 0, errors = 0;
      for (int k = 1; k <= 5; ++k) total += b.by_class[k] - std::min(a.by_class[k], b.by_class[k]);
      errors = b.by_class[5] - std::min(a.by_class[5], b.by_class[5]);
      baseline = now.value();
      const auto& an = s.spec.rollout.analysis;
      char buf[128];
      std::snprintf(buf, sizeof buf, "5xx %llu of %llu (%.2f%%, limit %.2f%%)", static_cast<unsigned long long>(errors),
                    static_cast<unsigned long long>(total), total ? 100.0 * errors / total : 0.0, 100 * an.max_error_ratio);
      r.detail = (mirrored ? "mirrored copies: " : "") + std::string(buf);
      if (total < static_cast<uint64_t>(an.min_requests)) {
        r.detail = std::string(mirrored ? "mirrored copies: " : "") + "no data: " + std::to_string(total) +
                   " requests, fewer than min_requests " + std::to_string(an.min_requests);
        r.verdict = noData(an.no_data);
      } else {
        r.verdict = static_cast<double>(errors) / total > an.max_error_ratio ? Verdict::kFail : Verdict::kPass;
        if (an.max_latency > Duration(0)) {
          const double want = toSeconds(an.max_latency);
          const double got = latencyQuantile(a, b, an.latency_quantile);
          char lat[128];
          if (got < 0) {
            r.verdict = worse(r.verdict, noData(an.no_data));
            std::snprintf(lat, sizeof lat, "; p%g latency: no histogram", 100 * an.latency_quantile);
          } else {
            if (got > want) r.verdict = Verdict::kFail;
            std::snprintf(lat, sizeof lat, "; p%g latency %.0f ms (limit %.0f ms)", 100 * an.latency_quantile, got * 1000,
                          want * 1000);
          }
          r.detail += lat;
        }
      }
    }
    // Prometheus queries: every one must hold; the worst verdict wins. (A conditional with a
    // temporary on one side would copy the whole list at every measurement.)
    static const std::vector<PrometheusCheck> kNoChecks;
    const std::vector<PrometheusCheck>& checks = mirrored ? kNoChecks : s.spec.prometheus_checks;
    for (const auto& check : checks) {
      const std::string q = expandCommand(check.query, {{"service", s.spec.rollout.service}, {"color", colorName(c)},
                                                        {"release", s.state.candidate_release}});
      auto v = prometheusQuery(s.spec.prometheus_url, q, std::chrono::seconds(5));
      Verdict verdict;
      std::string what;
      if (!v.ok()) {
        verdict = Verdict::kInconclusive;
        what = v.status().message();
      } else if (!v.value()) {
        verdict = noData(check.no_data);
        what = "no data";
      } else {
        const double x = *v.value();
        verdict = holds(x, check.op, check.threshold) ? Verdict::kPass : Verdict::kFail;
        char buf[96];
        std::snprintf(buf, sizeof buf, "%g (want %s %g)", x, check.op.c_str(), check.threshold);
        what = buf;
      }
      r.verdict = worse(r.verdict, verdict);
      r.detail += "; " + check.name + " " + what;
    }
    if (!s.spec.analysis_probes.empty()) r.verdict = worse(r.verdict, runProbes(s, c, &r.detail));
    s.analysis[verdictName(r.verdict)]->Increment();
    return r;
  }

  void tick() {
    for (auto& s : svcs) dispatch(*s, Event(EventKind::kTick));
    timers.scheduleAfter(config.tick, [this] { tick(); });
  }

  void loop() {
    for (;;) {
      timers.runDue();
      std::unique_lock<std::mutex> lock(mu);
      if (stopping) return;
      if (woken) {
        woken = false;
        continue;
      }
      const Duration wait = timers.waitFor(time.monotonicNow(), std::chrono::seconds(1));
      cv.wait_for(lock, wait, [this] { return stopping || woken; });
    }
  }

  // Runs fn on the loop thread and waits for its result.
  template <class T>
  T onLoop(std::function<T()> fn) {
    auto p = std::make_shared<std::promise<T>>();
    auto f = p->get_future();
    timers.scheduleAt(MonoTime::min(), [p, fn] { p->set_value(fn()); });
    return f.get();
  }
};

Controller::Controller(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusOr<std::unique_ptr<Controller>> Controller::start(ControllerConfig config, const TimeSource& time,
                                                        prometheus::Registry& registry, EventSink events,
                                                        ProbeRunner probes) {
  auto impl = std::make_unique<Impl>(std::move(config), time, std::move(events), std::move(probes));
  Impl& im = *impl;
  if (!im.config.state_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(im.config.state_dir, ec);
    if (ec) return Unavailable("rollouts.state_dir " + im.config.state_dir + ": " + ec.message());
    im.state_file = im.config.state_dir + "/rollouts.json";
  } else {
    spdlog::warn("rollouts.state_dir is not set: a restart forgets rollouts in progress");
  }
  if (!im.config.audit_log.empty()) {
    auto a = AuditLog::open(im.config.audit_log, time);
    if (!a.ok()) return a.status();
    im.audit = std::move(a.value());
  }
  for (const auto& spec : im.config.services) im.svcs.push_back(im.makeSvc(spec));
  if (Status s = im.load(); !s.ok()) return s;
  im.buildMetrics(registry);
  // After a restart: the router may have been changed (or restarted) meanwhile; the state on
  // disk is the truth. Active rollouts carry on from their phase.
  for (auto& s : im.svcs) {
    s->weights = im.weightsOf(s->state);  // a restored state re-asserts these just below
    if (s->restored) {
      const Status st = s->router->setWeights(s->state.candidate(), s->state.weight);
      if (!st.ok()) spdlog::warn("rollout {}: cannot re-assert weights yet: {}", s->spec.rollout.service, st.message());
      else spdlog::info("rollout {}: resumed in {} with {} at {}%", s->spec.rollout.service, phaseName(s->state.phase),
                        colorName(s->state.candidate()), s->state.weight);
      im.takeBaseline(*s);
      s->state.measuring = false;  // an answer that was out when we stopped will not come
    }
    im.updateGauges(*s);
  }
  im.publish();
  im.thread = std::thread([p = &im] { p->loop(); });
  im.timers.scheduleAfter(im.config.tick, [p = &im] { p->tick(); });
  return std::unique_ptr<Controller>(new Controller(std::move(impl)));
}

Controller::~Controller() { stop(); }

void Controller::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    impl_->cv.notify_all();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
  std::lock_guard<std::mutex> lock(impl_->workers_mu);
  for (auto& w : impl_->workers) {
    if (w.joinable()) w.join();
  }
  impl_->workers.clear();
}

StatusOr<ServiceView> Controller::command(const std::string& service, EventKind kind, const std::string& actor,
                                          const std::string& release, const std::string& reason) {
  Impl& im = *impl_;
  return im.onLoop<StatusOr<ServiceView>>([&]() -> StatusOr<ServiceView> {
    for (auto& s : im.svcs) {
      if (s->spec.rollout.service != service) continue;
      Event e(kind);
      e.actor = actor;
      e.release = release;
      e.detail = reason;
      const std::string error = im.dispatch(*s, e);
      if (!error.empty()) return FailedPrecondition(error);
      return ServiceView{service, s->router->describe(), s->state, s->spec.rollout.strategy};
    }
    return NotFound("no service named \"" + service + "\" in rollouts.services");
  });
}

StatusOr<std::vector<std::string>> Controller::history(const std::string& service, size_t limit) const {
  if (!impl_->audit) return FailedPrecondition("no audit log: set rollouts.state_dir or rollouts.audit_log");
  std::ifstream in(impl_->audit->path());
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("service", "") != service) continue;
    last.push_back(line);
    if (last.size() > limit) last.pop_front();
  }
  return std::vector<std::string>(last.begin(), last.end());
}

Status Controller::reconfigure(const ControllerConfig& config) {
  Impl& im = *impl_;
  return im.onLoop<Status>([&] { return im.reconfigure(config); });
}

std::vector<ServiceView> Controller::services() const {
  std::lock_guard<std::mutex> lock(impl_->view_mu);
  return impl_->view;
}

}  // namespace greenlight::controller
