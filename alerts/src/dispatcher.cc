#include "greenlight/alerts/dispatcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

namespace greenlight::alerts {

using namespace std::chrono_literals;

Dispatcher::Dispatcher(Scheduler& scheduler, Sink sink) : scheduler_(scheduler), sink_(std::move(sink)) {}

Dispatcher::~Dispatcher() {
  for (auto& [key, g] : groups_) {
    if (g.timer) scheduler_.cancel(g.timer);
  }
}

void Dispatcher::setConfig(DispatcherConfig config) { config_ = std::move(config); }

void Dispatcher::collectRoutes(const RouteSpec& spec, const Route& parent, const Labels& labels,
                               std::vector<Route>& out) const {
  Route r = parent;
  if (!spec.receiver.empty()) r.receiver = spec.receiver;
  if (spec.group_by) {
    r.group_by_all = std::find(spec.group_by->begin(), spec.group_by->end(), "...") != spec.group_by->end();
    r.group_by = *spec.group_by;
  }
  if (spec.group_wait) r.group_wait = *spec.group_wait;
  if (spec.group_interval) r.group_interval = *spec.group_interval;
  if (spec.repeat_interval) r.repeat_interval = *spec.repeat_interval;
  if (spec.resolve_immediately) r.resolve_immediately = *spec.resolve_immediately;
  bool child_matched = false;
  for (size_t i = 0; i < spec.routes.size(); ++i) {
    const RouteSpec& child = spec.routes[i];
    if (!matchesAll(child.matchers, labels)) continue;
    Route base = r;
    std::string m;
    for (const auto& x : child.matchers) m += (m.empty() ? "" : ",") + x.toString();
    base.id = r.id + "/" + std::to_string(i) + "{" + m + "}";
    collectRoutes(child, base, labels, out);
    child_matched = true;
    if (!child.continue_matching) break;
  }
  if (!child_matched) out.push_back(r);
}

std::vector<Dispatcher::Route> Dispatcher::routesFor(const Labels& labels) const {
  Route root;
  root.id = "{}";
  root.group_by = {"alertname"};
  root.group_wait = 30s;  // Alertmanager's defaults
  root.group_interval = 5min;
  root.repeat_interval = 4h;
  std::vector<Route> out;
  collectRoutes(config_.root, root, labels, out);
  for (Route& r : out) {
    if (auto it = config_.resend.find(r.receiver); it != config_.resend.end()) {
      r.group_interval = std::min(r.group_interval, it->second);
      r.repeat_interval = std::min(r.repeat_interval, it->second);
      r.resend_resolved = true;
    }
  }
  return out;
}

void Dispatcher::update(const AlertUpdate& u) {
  Alert a{u.labels, u.annotations, u.firing, u.starts_at, u.ends_at, fingerprint(u.labels)};
  if (a.firing) {
    firing_[a.fingerprint] = a;
  } else {
    firing_.erase(a.fingerprint);
  }
  const MonoTime now = scheduler_.time().monotonicNow();
  for (const Route& route : routesFor(a.labels)) {
    const Labels glabels = route.group_by_all ? a.labels : project(a.labels, route.group_by);
    const std::string key = route.id + ":" + labelsToString(glabels);
    auto [it, created] = groups_.try_emplace(key);
    Group& g = it->second;
    if (created) {
      g.route = route;
      g.labels = glabels;
    }
    if (!a.firing && g.alerts.find(a.fingerprint) == g.alerts.end() && !g.sent.count(a.fingerprint)) {
      // Resolved without this group ever holding it firing (e.g. routes changed): nothing to say.
      if (created) groups_.erase(it);
      continue;
    }
    g.alerts[a.fingerprint] = a;
    if (!g.flushed) {
      if (!g.timer) schedule(key, now + g.route.group_wait);
    } else if (!a.firing && g.route.resolve_immediately &&
               std::none_of(g.alerts.begin(), g.alerts.end(), [](const auto& x) { return x.second.firing; })) {
      schedule(key, now);
    } else if (!g.timer) {
      schedule(key, now + g.route.group_interval);
    }
  }
}

void Dispatcher::schedule(const std::string& key, MonoTime at) {
  Group& g = groups_.at(key);
  if (g.timer) {
    if (g.due <= at) return;  // an earlier flush is already coming
    scheduler_.cancel(g.timer);
  }
  g.due = at;
  g.timer = scheduler_.scheduleAt(at, [this, key] {
    auto it = groups_.find(key);
    if (it == groups_.end()) return;
    it->second.timer = 0;
    flush(key);
  });
}

MuteState Dispatcher::muted(const Labels& labels) const {
  MuteState m;
  const WallTime now = scheduler_.time().wallNow();
  for (const auto& s : silences_) {
    if (s.activeAt(now) && matchesAll(s.matchers, labels)) m.silenced_by.push_back(s.id);
  }
  for (const auto& rule : config_.inhibit_rules) {
    if (!matchesAll(rule.target_matchers, labels)) continue;
    for (const auto& [fp, src] : firing_) {
      if (src.labels == labels || !matchesAll(rule.source_matchers, src.labels)) continue;
      const bool equal = std::all_of(rule.equal.begin(), rule.equal.end(), [&](const std::string& n) {
        auto a = labels.find(n);
        auto b = src.labels.find(n);
        return (a == labels.end() ? "" : a->second) == (b == src.labels.end() ? "" : b->second);
      });
      if (equal) {
        m.inhibited = true;
        break;
      }
    }
  }
  return m;
}

void Dispatcher::flush(const std::string& key) {
  Group& g = groups_.at(key);
  const WallTime wall = scheduler_.time().wallNow();
  const MonoTime now = scheduler_.time().monotonicNow();
  std::vector<Alert> to_send;
  std::map<std::string, bool> state;  // what the receiver will know after this notification
  bool any_firing = false, changed = false;
  for (const auto& [fp, a] : g.alerts) {
    const MuteState m = muted(a.labels);
    const bool mute = !m.silenced_by.empty() || m.inhibited;
    auto prev = g.sent.find(fp);
    if (a.firing) {
      if (mute) continue;  // a muted alert is as if absent; it has not been "sent"
      any_firing = true;
      state[fp] = true;
      to_send.push_back(a);
      if (prev == g.sent.end() || !prev->second) changed = true;
    } else {
      const bool was_sent_firing = prev != g.sent.end() && prev->second;
      const bool short_alert = prev == g.sent.end() && config_.report_short_alerts && !mute;
      if (!was_sent_firing && !short_alert) continue;
      to_send.push_back(a);
      state[fp] = false;
      changed = true;
    }
  }
  for (const auto& [fp, firing] : g.sent) {
    if (firing && !state.count(fp) && g.alerts.count(fp) && g.alerts.at(fp).firing) changed = true;  // got muted
  }
  for (auto it = g.resolved_resend.begin(); it != g.resolved_resend.end();) {
    if (wall - it->second.ends_at >= config_.resend_resolved_for || g.alerts.count(it->first)) {
      it = g.resolved_resend.erase(it);
      continue;
    }
    to_send.push_back(it->second);
    ++it;
  }
  const bool repeat = (any_firing || !g.resolved_resend.empty()) && wall - g.last_notified >= g.route.repeat_interval;
  if (!to_send.empty() && (changed || repeat)) {
    Notification n;
    n.receiver = g.route.receiver;
    n.group_key = g.route.id + ":" + labelsToString(g.labels);
    n.firing = any_firing;
    n.group_labels = g.labels;
    n.common_labels = to_send.front().labels;
    n.common_annotations = to_send.front().annotations;
    for (const auto& a : to_send) {
      for (auto it = n.common_labels.begin(); it != n.common_labels.end();) {
        auto o = a.labels.find(it->first);
        it = (o == a.labels.end() || o->second != it->second) ? n.common_labels.erase(it) : std::next(it);
      }
      for (auto it = n.common_annotations.begin(); it != n.common_annotations.end();) {
        auto o = a.annotations.find(it->first);
        it = (o == a.annotations.end() || o->second != it->second) ? n.common_annotations.erase(it) : std::next(it);
      }
    }
    n.alerts = std::move(to_send);
    g.sent = state;
    g.last_notified = wall;
    sink_(n);
  } else if (to_send.empty()) {
    g.sent = state;
  }
  g.flushed = true;
  // Resolved alerts have been reported (or were never worth reporting): forget them, or keep
  // re-sending them for a while to a receiver that needs it.
  for (auto it = g.alerts.begin(); it != g.alerts.end();) {
    if (it->second.firing) {
      ++it;
      continue;
    }
    if (g.route.resend_resolved && g.sent.count(it->first)) g.resolved_resend[it->first] = it->second;
    it = g.alerts.erase(it);
  }
  if (g.alerts.empty() && g.resolved_resend.empty()) {
    groups_.erase(key);
    return;
  }
  schedule(key, now + g.route.group_interval);
}

std::string Dispatcher::addSilence(Silence s) {
  if (s.id.empty()) {
    std::random_device rd;
    char buf[33];
    std::snprintf(buf, sizeof buf, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
    s.id = buf;
  }
  silences_.erase(std::remove_if(silences_.begin(), silences_.end(), [&](const Silence& x) { return x.id == s.id; }),
                  silences_.end());
  silences_.push_back(s);
  return s.id;
}

bool Dispatcher::expireSilence(const std::string& id, WallTime at) {
  for (auto& s : silences_) {
    if (s.id != id) continue;
    if (s.ends_at <= at) return false;  // already over
    s.ends_at = std::max(at, s.starts_at);
    // Alerts it hid are due for notification at their group's next flush.
    return true;
  }
  return false;
}

std::vector<GroupRecord> Dispatcher::groups() const {
  std::vector<GroupRecord> out;
  for (const auto& [key, g] : groups_) {
    GroupRecord r{g.route.id, g.route.receiver, g.labels, {}, g.sent, g.last_notified};
    for (const auto& [fp, a] : g.alerts) r.alerts.push_back(a);
    out.push_back(std::move(r));
  }
  return out;
}

void Dispatcher::restore(const std::vector<GroupRecord>& groups, std::vector<Silence> silences) {
  silences_ = std::move(silences);
  const MonoTime now = scheduler_.time().monotonicNow();
  for (const auto& rec : groups) {
    if (rec.alerts.empty()) continue;
    // The route as configured now (settings may have changed); keep the recorded receiver.
    const auto routes = routesFor(rec.alerts.front().labels);
    auto route = std::find_if(routes.begin(), routes.end(), [&](const Route& r) { return r.id == rec.route; });
    if (route == routes.end()) continue;  // the route is gone: its alerts will be re-grouped
    const std::string key = rec.route + ":" + labelsToString(rec.labels);
    Group& g = groups_[key];
    g.route = *route;
    g.labels = rec.labels;
    g.sent = rec.sent;
    g.last_notified = rec.last_notified;
    g.flushed = !rec.sent.empty();
    for (const auto& a : rec.alerts) {
      g.alerts[a.fingerprint] = a;
      if (a.firing) firing_[a.fingerprint] = a;
    }
    schedule(key, now + (g.flushed ? g.route.group_interval : g.route.group_wait));
  }
}

bool Dispatcher::restoreQueued(const std::string& group_key, const std::map<std::string, bool>& sent, WallTime at) {
  auto it = groups_.find(group_key);
  if (it == groups_.end()) return false;  // not saved at all: its alerts come back through the rules
  Group& g = it->second;
  if (g.flushed && g.sent == sent && g.last_notified >= at) return false;
  g.sent = sent;
  g.flushed = true;
  g.last_notified = std::max(g.last_notified, at);
  return true;
}

}  // namespace greenlight::alerts
