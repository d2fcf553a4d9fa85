#include "greenlight/alerts/rule.h"

#include <cmath>
#include <cstdio>
#include <regex>

namespace greenlight::alerts {

using namespace std::chrono_literals;

const char* ruleKindName(RuleKind k) {
  switch (k) {
    case RuleKind::kProbeHealth: return "probe_health";
    case RuleKind::kFailureRatio: return "failure_ratio";
    case RuleKind::kLatency: return "latency";
    case RuleKind::kBurnRate: return "burn_rate";
    case RuleKind::kEvent: return "event";
  }
  return "?";
}

const char* phaseName(Phase p) {
  switch (p) {
    case Phase::kInactive: return "inactive";
    case Phase::kPending: return "pending";
    case Phase::kFiring: return "firing";
  }
  return "?";
}

std::vector<BurnWindow> defaultBurnWindows() {
  return {{1h, 5min, 14.4, "page"}, {6h, 30min, 6, "page"}, {24h, 2h, 3, "ticket"}, {72h, 6h, 1, "ticket"}};
}

Duration RuleSpec::longestWindow() const {
  switch (kind) {
    case RuleKind::kFailureRatio:
    case RuleKind::kLatency: return window;
    case RuleKind::kBurnRate: {
      Duration longest{0};
      for (const auto& w : burn_windows) longest = std::max({longest, w.long_window, w.short_window});
      return longest;
    }
    default: return Duration(0);
  }
}

Step evaluateInstance(const RuleSpec& rule, const InstanceState& prev, Condition cond, double value,
                      MonoTime now, WallTime wall_now) {
  Step s{prev, Transition::kNone};
  if (cond == Condition::kNoData) {
    switch (rule.no_data) {
      case NoDataPolicy::kKeep: return s;  // hold whatever the last data said
      case NoDataPolicy::kResolve: cond = Condition::kFalse; break;
      case NoDataPolicy::kAlert: cond = Condition::kTrue; break;
    }
  }
  InstanceState& n = s.next;
  if (cond == Condition::kTrue) {
    n.value = value;
    n.last_true = now;
    if (prev.phase == Phase::kInactive) n.active_since = now;
    const bool due = now - n.active_since >= rule.for_duration;
    if (prev.phase != Phase::kFiring && due) {
      n.phase = Phase::kFiring;
      n.starts_at = wall_now;
      n.ends_at = WallTime{};
      s.transition = Transition::kFired;
    } else if (prev.phase == Phase::kInactive) {
      n.phase = Phase::kPending;
      s.transition = Transition::kBecamePending;
    }
    return s;
  }
  // The condition does not hold.
  if (prev.phase == Phase::kPending) {
    n.phase = Phase::kInactive;
    s.transition = Transition::kPendingCleared;
  } else if (prev.phase == Phase::kFiring && now - prev.last_true >= rule.keep_firing_for) {
    n.phase = Phase::kInactive;
    n.ends_at = wall_now;
    n.value = value;
    s.transition = Transition::kResolved;
  }
  return s;
}

namespace {
const std::regex& templateRegex() {
  static const std::regex re(R"(\{\{\s*([^}]*?)\s*\}\})");
  return re;
}
const std::regex& fieldRegex() {
  static const std::regex re(R"(\$labels\.([A-Za-z_][A-Za-z0-9_]*)|\$value)");
  return re;
}
std::string formatValue(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}
}  // namespace

std::string checkTemplate(const std::string& text) {
  for (auto it = std::sregex_iterator(text.begin(), text.end(), templateRegex()); it != std::sregex_iterator(); ++it) {
    const std::string inner = (*it)[1];
    if (!std::regex_match(inner, fieldRegex())) {
      return "unknown template field \"{{ " + inner + " }}\": expected {{ $labels.NAME }} or {{ $value }}";
    }
  }
  return "";
}

std::string expandTemplate(const std::string& text, const Labels& labels, double value, bool no_data) {
  std::string out;
  auto last = text.cbegin();
  for (auto it = std::sregex_iterator(text.begin(), text.end(), templateRegex()); it != std::sregex_iterator(); ++it) {
    out.append(last, text.cbegin() + it->position());
    const std::string inner = (*it)[1];
    std::smatch m;
    if (inner == "$value") {
      out += no_data ? "no data" : formatValue(value);
    } else if (std::regex_match(inner, m, fieldRegex()) && m[1].matched) {
      auto l = labels.find(m[1]);
      if (l != labels.end()) out += l->second;
    }
    last = text.cbegin() + it->position() + it->length();
  }
  out.append(last, text.cend());
  return out;
}

}  // namespace greenlight::alerts
