#include "greenlight/alerts/rule_engine.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace greenlight::alerts {

using namespace std::chrono_literals;

namespace {
// Bucket counts: 60 slices of a ratio window (5 s for 5 min); burn-rate windows are many and
// long, 30 slices each is plenty for their thresholds.
constexpr int kWindowBuckets = 60;
constexpr int kBurnBuckets = 30;
// A series nobody observed for this long (beyond its longest window) and that is not active
// is forgotten: a removed probe leaves nothing behind.
constexpr Duration kForgetAfter = 10min;
}  // namespace

RuleEngine::RuleEngine(const TimeSource& time, Sink sink) : time_(time), sink_(std::move(sink)) {}

namespace {
// The window spans a rule reads; a reload keeps windows whose span is still read.
std::set<int64_t> spansOf(const RuleSpec& r) {
  std::set<int64_t> spans;
  if (r.kind == RuleKind::kFailureRatio || r.kind == RuleKind::kLatency) spans.insert(r.window.count());
  if (r.kind == RuleKind::kBurnRate) {
    for (const auto& w : r.burn_windows) spans.insert({w.long_window.count(), w.short_window.count()});
  }
  return spans;
}
}  // namespace

void RuleEngine::setRules(std::vector<RuleSpec> rules) {
  const WallTime wall = time_.wallNow();
  auto resolve = [&](const Instance& inst) {
    sink_(AlertUpdate{inst.labels, {}, false, inst.state.starts_at, wall, inst.state.value});
  };
  std::vector<std::unique_ptr<RuleState>> next;
  for (auto& spec : rules) {
    auto r = std::make_unique<RuleState>();
    for (auto& old : rules_) {
      if (old && old->spec.name == spec.name && old->spec.kind == spec.kind) {
        // Same rule: series keep their windows (those still read) and instances their state.
        r->series = std::move(old->series);
        old.reset();
        break;
      }
    }
    r->spec = std::move(spec);
    const std::set<int64_t> spans = spansOf(r->spec);
    for (auto& [key, s] : r->series) {
      for (auto it = s.windows.begin(); it != s.windows.end();) {
        it = spans.count(it->first) ? std::next(it) : s.windows.erase(it);
      }
      for (auto& [sev, inst] : s.instances) {
        const Labels labels = instanceLabels(*r, key, sev);
        if (labels == inst.labels) continue;
        // Its identity changed (new rule labels): the old alert resolves, the new one fires on
        // the next evaluation, so no receiver keeps an alert that will never resolve.
        if (inst.state.phase == Phase::kFiring) resolve(inst);
        inst = Instance{};
        inst.labels = labels;
      }
    }
    next.push_back(std::move(r));
  }
  // Instances of removed rules that were firing resolve now.
  for (auto& old : rules_) {
    if (!old) continue;
    for (auto& [key, s] : old->series) {
      for (auto& [sev, inst] : s.instances) {
        if (inst.state.phase == Phase::kFiring) resolve(inst);
      }
    }
  }
  rules_ = std::move(next);
}

signals::OutcomeWindow& RuleEngine::windowOf(Series& s, Duration span, bool latency) {
  auto& w = s.windows[span.count()];
  if (!w) w = std::make_unique<signals::OutcomeWindow>(span, latency ? kWindowBuckets : kBurnBuckets, latency);
  return *w;
}

RuleEngine::Series& RuleEngine::seriesFor(RuleState& r, const Labels& key) { return r.series[key]; }

void RuleEngine::observe(const Observation& o) {
  const MonoTime now = time_.monotonicNow();
  for (auto& rp : rules_) {
    RuleState& r = *rp;
    if (r.spec.kind == RuleKind::kEvent || !matchesAll(r.spec.matchers, o.labels)) continue;
    const Labels key = r.spec.by.empty() ? o.labels : project(o.labels, r.spec.by);
    Series& s = seriesFor(r, key);
    s.last_seen = now;
    switch (r.spec.kind) {
      case RuleKind::kProbeHealth: {
        const std::string member = fingerprint(o.labels);
        if (o.unhealthy) {
          s.unhealthy[member] = {*o.unhealthy, now};
        } else {
          s.unhealthy.erase(member);
        }
        break;
      }
      case RuleKind::kFailureRatio:
      case RuleKind::kLatency:
        windowOf(s, r.spec.window, true).observe(now, o.ok, o.latency_seconds);
        break;
      case RuleKind::kBurnRate: {
        std::set<int64_t> spans;
        for (const auto& w : r.spec.burn_windows) spans.insert({w.long_window.count(), w.short_window.count()});
        for (int64_t span : spans) windowOf(s, Duration(span), false).observe(now, o.ok, 0);
        break;
      }
      case RuleKind::kEvent: break;
    }
    evaluate(r, key, s, now);
  }
}

void RuleEngine::raise(const std::string& event, const Labels& labels, const Labels& annotations) {
  const MonoTime now = time_.monotonicNow();
  for (auto& rp : rules_) {
    RuleState& r = *rp;
    if (r.spec.kind != RuleKind::kEvent || r.spec.event != event || !matchesAll(r.spec.matchers, labels)) continue;
    const Labels key = r.spec.by.empty() ? labels : project(labels, r.spec.by);
    Series& s = seriesFor(r, key);
    s.last_seen = now;
    s.event_at = now;
    s.event_annotations = annotations;
    evaluate(r, key, s, now);
  }
}

void RuleEngine::evaluate(RuleState& r, const Labels& key, Series& s, MonoTime now) {
  const RuleSpec& spec = r.spec;
  const auto enough = [&](const signals::WindowStats& st) { return st.total >= static_cast<uint64_t>(spec.min_samples); };
  for (auto& [sev, inst] : s.instances) {
    if (inst.labels.empty()) inst.labels = instanceLabels(r, key, sev);
  }
  switch (spec.kind) {
    case RuleKind::kProbeHealth: {
      int down = 0;
      for (auto it = s.unhealthy.begin(); it != s.unhealthy.end();) {
        if (now - it->second.second > kForgetAfter) {  // a probe removed from the config
          it = s.unhealthy.erase(it);
          continue;
        }
        down += it->second.first ? 1 : 0;
        ++it;
      }
      const Condition c = s.unhealthy.empty()     ? Condition::kNoData
                          : down >= spec.quorum ? Condition::kTrue
                                                : Condition::kFalse;
      apply(r, key, s, "", c, down, now);
      break;
    }
    case RuleKind::kFailureRatio: {
      const auto st = windowOf(s, spec.window, true).stats(now, spec.window);
      const double ratio = st.failureRatio();
      apply(r, key, s, "", !enough(st) ? Condition::kNoData : ratio > spec.threshold ? Condition::kTrue : Condition::kFalse,
            ratio, now);
      break;
    }
    case RuleKind::kLatency: {
      auto& w = windowOf(s, spec.window, true);
      const auto st = w.stats(now, spec.window);
      const double q = w.latencyQuantile(now, spec.window, spec.quantile);
      apply(r, key, s, "", !enough(st) ? Condition::kNoData : q > spec.threshold ? Condition::kTrue : Condition::kFalse, q,
            now);
      break;
    }
    case RuleKind::kBurnRate: {
      // Per severity: any pair whose long AND short windows both burn faster than its factor.
      std::map<std::string, std::pair<Condition, double>> by_severity;
      const double budget = 1.0 - spec.objective;
      for (const auto& w : spec.burn_windows) {
        const auto lst = windowOf(s, w.long_window, false).stats(now, w.long_window);
        const auto sst = windowOf(s, w.short_window, false).stats(now, w.short_window);
        auto& [cond, value] = by_severity.try_emplace(w.severity, Condition::kNoData, 0.0).first->second;
        if (!enough(lst) || !enough(sst)) continue;
        const double burn = budget > 0 ? lst.failureRatio() / budget : 0;
        const bool trips = lst.failureRatio() > w.factor * budget && sst.failureRatio() > w.factor * budget;
        if (cond == Condition::kNoData) cond = Condition::kFalse;
        if (trips) cond = Condition::kTrue;
        value = std::max(value, burn);
      }
      for (const auto& [sev, cv] : by_severity) apply(r, key, s, sev, cv.first, cv.second, now);
      break;
    }
    case RuleKind::kEvent: apply(r, key, s, "", s.event_at == now ? Condition::kTrue : Condition::kFalse, 1, now); break;
  }
}

Labels RuleEngine::instanceLabels(const RuleState& r, const Labels& key, const std::string& severity) const {
  Labels l = key;
  for (const auto& [k, v] : r.spec.labels) l[k] = v;
  if (!severity.empty()) l["severity"] = severity;
  l["alertname"] = r.spec.name;
  return l;
}

void RuleEngine::apply(RuleState& r, const Labels& key, Series& s, const std::string& severity, Condition cond, double value,
                       MonoTime now) {
  auto [it, created] = s.instances.try_emplace(severity);
  Instance& inst = it->second;
  if (created) inst.labels = instanceLabels(r, key, severity);
  if (r.spec.kind == RuleKind::kEvent && cond == Condition::kTrue) inst.event_annotations = s.event_annotations;
  const Step step = evaluateInstance(r.spec, inst.state, cond, value, now, time_.wallNow());
  inst.state = step.next;
  if (step.transition == Transition::kNone) return;
  if (step.transition == Transition::kFired || step.transition == Transition::kResolved) {
    AlertUpdate u;
    u.labels = inst.labels;
    for (const auto& [k, v] : r.spec.annotations) {
      u.annotations[k] = expandTemplate(v, inst.labels, step.next.value, cond == Condition::kNoData);
    }
    for (const auto& [k, v] : inst.event_annotations) u.annotations[k] = v;
    u.firing = step.transition == Transition::kFired;
    u.starts_at = step.next.starts_at;
    u.ends_at = step.next.ends_at;
    u.value = step.next.value;
    sink_(u);
  }
}

void RuleEngine::tick() {
  const MonoTime now = time_.monotonicNow();
  for (auto& rp : rules_) {
    RuleState& r = *rp;
    const Duration forget = std::max(kForgetAfter, r.spec.longestWindow());
    for (auto it = r.series.begin(); it != r.series.end();) {
      evaluate(r, it->first, it->second, now);
      const bool active = std::any_of(it->second.instances.begin(), it->second.instances.end(),
                                      [](const auto& i) { return i.second.state.phase != Phase::kInactive; });
      if (!active && now - it->second.last_seen > forget) {
        it = r.series.erase(it);
      } else {
        ++it;
      }
    }
  }
}

void RuleEngine::restore(const std::vector<FiringRecord>& records) {
  const MonoTime now = time_.monotonicNow();
  for (const auto& rec : records) {
    for (auto& rp : rules_) {
      if (rp->spec.name != rec.rule) continue;
      Series& s = seriesFor(*rp, rec.series);
      s.last_seen = now;
      Instance& inst = s.instances[rec.severity];
      inst.labels = instanceLabels(*rp, rec.series, rec.severity);
      inst.state.phase = Phase::kFiring;
      inst.state.active_since = now;
      inst.state.last_true = now;
      inst.state.starts_at = rec.starts_at;
      inst.state.value = rec.value;
    }
  }
}

std::vector<FiringRecord> RuleEngine::firing() const {
  std::vector<FiringRecord> out;
  for (const auto& rp : rules_) {
    for (const auto& [key, s] : rp->series) {
      for (const auto& [sev, inst] : s.instances) {
        if (inst.state.phase == Phase::kFiring) out.push_back({rp->spec.name, key, sev, inst.state.starts_at, inst.state.value});
      }
    }
  }
  return out;
}

std::vector<InstanceView> RuleEngine::snapshot() const {
  std::vector<InstanceView> view;
  const MonoTime now = time_.monotonicNow();
  const WallTime wall = time_.wallNow();
  for (const auto& rp : rules_) {
    for (const auto& [key, s] : rp->series) {
      for (const auto& [sev, inst] : s.instances) {
        if (inst.state.phase == Phase::kInactive) continue;
        InstanceView v;
        v.rule = rp->spec.name;
        v.labels = inst.labels;
        for (const auto& [k, t] : rp->spec.annotations) v.annotations[k] = expandTemplate(t, inst.labels, inst.state.value, false);
        v.phase = inst.state.phase;
        v.active_since = wall - std::chrono::duration_cast<WallTime::duration>(now - inst.state.active_since);
        v.starts_at = inst.state.starts_at;
        v.value = inst.state.value;
        view.push_back(std::move(v));
      }
    }
  }
  return view;
}

size_t RuleEngine::seriesCount() const {
  size_t n = 0;
  for (const auto& rp : rules_) n += rp->series.size();
  return n;
}

}  // namespace greenlight::alerts
