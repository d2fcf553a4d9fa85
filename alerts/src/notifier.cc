#include "greenlight/alerts/notifier.h"

#include <nlohmann/json.hpp>


#include "greenlight/common/crypto.h"
#include "greenlight/common/time_format.h"

namespace greenlight::alerts {

using nlohmann::json;

const char* receiverKindName(ReceiverKind k) {
  switch (k) {
    case ReceiverKind::kWebhook: return "webhook";
    case ReceiverKind::kSlack: return "slack";
    case ReceiverKind::kPagerDuty: return "pagerduty";
    case ReceiverKind::kAlertmanager: return "alertmanager";
  }
  return "?";
}

HttpRequestSpec Notifier::request(const std::string& body) const {
  HttpRequestSpec r;
  r.url = spec_.url;
  r.body = bodyForSend(body);
  r.timeout = spec_.timeout;
  r.ca_file = spec_.ca_file;
  r.verify_tls = spec_.verify_tls;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("User-Agent", "greenlight/0.1");
  for (const auto& [k, v] : spec_.headers) r.headers.emplace_back(k, v);
  addHeaders(r);
  return r;
}

Outcome Notifier::classify(const HttpReply& reply) const {
  Outcome o;
  if (reply.status >= 200 && reply.status < 300) {
    o.verdict = Verdict::kDelivered;
    return o;
  }
  if (reply.status == 0) {
    o.why = reply.error.empty() ? "no reply" : reply.error;
    return o;
  }
  o.why = "HTTP " + std::to_string(reply.status);
  if (reply.status == 429 || reply.status >= 500) {
    if (auto it = reply.headers.find("retry-after"); it != reply.headers.end()) {
      try {
        o.retry_after = std::chrono::seconds(std::max(0, std::stoi(it->second)));
      } catch (const std::exception&) {
      }
    }
    return o;
  }
  o.verdict = Verdict::kGiveUp;  // the receiver refuses this payload: retrying will not help
  return o;
}

namespace {

json labelsJson(const Labels& l) {
  json j = json::object();
  for (const auto& [k, v] : l) j[k] = v;
  return j;
}

// Alertmanager's webhook payload, version "4".
class WebhookNotifier final : public Notifier {
 public:
  using Notifier::Notifier;
  std::vector<Payload> encode(const Notification& n, const EncodeContext& ctx) const override {
    if (!n.firing && !spec_.send_resolved) return {};
    json j;
    j["version"] = "4";
    j["groupKey"] = n.group_key;
    const size_t keep = spec_.max_alerts > 0 ? std::min<size_t>(spec_.max_alerts, n.alerts.size()) : n.alerts.size();
    j["truncatedAlerts"] = n.alerts.size() - keep;
    j["status"] = n.firing ? "firing" : "resolved";
    j["receiver"] = n.receiver;
    j["groupLabels"] = labelsJson(n.group_labels);
    j["commonLabels"] = labelsJson(n.common_labels);
    j["commonAnnotations"] = labelsJson(n.common_annotations);
    j["externalURL"] = ctx.external_url;
    json alerts = json::array();
    for (size_t i = 0; i < keep; ++i) {
      const Alert& a = n.alerts[i];
      alerts.push_back({{"status", a.firing ? "firing" : "resolved"},
                        {"labels", labelsJson(a.labels)},
                        {"annotations", labelsJson(a.annotations)},
                        {"startsAt", formatRfc3339(a.starts_at)},
                        {"endsAt", formatRfc3339(a.firing ? WallTime{} : a.ends_at)},
                        {"generatorURL", ctx.external_url + "/alerts"},
                        {"fingerprint", a.fingerprint}});
    }
    j["alerts"] = alerts;
    return {{j.dump(), n.group_key}};
  }
};

// Slack incoming webhook: one message per notification.
class SlackNotifier final : public Notifier {
 public:
  using Notifier::Notifier;
  std::vector<Payload> encode(const Notification& n, const EncodeContext& ctx) const override {
    if (!n.firing && !spec_.send_resolved) return {};
    std::string name;
    if (auto it = n.common_labels.find("alertname"); it != n.common_labels.end()) name = it->second;
    size_t firing = 0;
    for (const auto& a : n.alerts) firing += a.firing ? 1 : 0;
    std::string text = n.firing ? "[FIRING:" + std::to_string(firing) + "] " : "[RESOLVED] ";
    text += name.empty() ? labelsToString(n.group_labels) : name;
    for (const auto& a : n.alerts) {
      auto s = a.annotations.find("summary");
      text += "\n• " + std::string(a.firing ? "firing" : "resolved") + ": " +
              (s != a.annotations.end() ? s->second : labelsToString(a.labels));
      if (auto r = a.annotations.find("runbook_url"); r != a.annotations.end()) text += " <" + r->second + "|runbook>";
    }
    if (!ctx.external_url.empty()) text += "\n<" + ctx.external_url + "/|Greenlight>";
    return {{json{{"text", text}}.dump(), n.group_key}};
  }
  Outcome classify(const HttpReply& reply) const override {
    Outcome o = Notifier::classify(reply);
    if (reply.status == 429 && !o.retry_after) {
      // Slack may say it in the body: {"retry_after": 30}
      try {
        auto j = json::parse(reply.body);
        if (j.contains("retry_after")) o.retry_after = std::chrono::seconds(j["retry_after"].get<int>());
      } catch (const std::exception&) {
      }
    }
    return o;
  }
};

// PagerDuty Events API v2: one event per alert, dedup_key stable per alert so "resolve" closes
// the incident "trigger" opened.
class PagerDutyNotifier final : public Notifier {
 public:
  using Notifier::Notifier;
  std::vector<Payload> encode(const Notification& n, const EncodeContext& ctx) const override {
    std::vector<Payload> out;
    for (const auto& a : n.alerts) {
      if (!a.firing && !spec_.send_resolved) continue;
      const auto digest = sha256(n.receiver + "/" + a.fingerprint);
      const std::string dedup = toHex(digest.data(), digest.size()).substr(0, 32);
      json j;
      j["dedup_key"] = dedup;  // routing_key is added at send time (bodyForSend)
      j["event_action"] = a.firing ? "trigger" : "resolve";
      if (a.firing) {
        std::string summary;
        if (auto s = a.annotations.find("summary"); s != a.annotations.end()) summary = s->second;
        if (summary.empty()) summary = labelsToString(a.labels);
        if (summary.size() > 1024) summary.resize(1024);
        std::string severity = "error";
        if (auto s = a.labels.find("severity"); s != a.labels.end()) {
          if (s->second == "page" || s->second == "critical") severity = "critical";
          else if (s->second == "warning" || s->second == "ticket") severity = "warning";
          else if (s->second == "info") severity = "info";
        }
        json details = labelsJson(a.labels);
        j["payload"] = {{"summary", summary},
                        {"source", ctx.external_url.empty() ? "greenlight" : ctx.external_url},
                        {"severity", severity},
                        {"timestamp", formatRfc3339(a.starts_at)},
                        {"custom_details", details}};
        if (auto it = a.labels.find("alertname"); it != a.labels.end()) j["payload"]["class"] = it->second;
        if (auto r = a.annotations.find("runbook_url"); r != a.annotations.end()) {
          j["links"] = json::array({{{"href", r->second}, {"text", "runbook"}}});
        }
      }
      out.push_back({j.dump(), dedup});
    }
    return out;
  }

 protected:
  std::string bodyForSend(const std::string& stored) const override {
    json j = json::parse(stored, nullptr, false);
    if (j.is_discarded()) return stored;
    j["routing_key"] = spec_.routing_key;
    return j.dump();
  }
};

// Alertmanager API v2: POST /api/v2/alerts with the alerts; a firing alert's endsAt is left
// for Alertmanager's resolve_timeout to extend on each resend.
class AlertmanagerNotifier final : public Notifier {
 public:
  using Notifier::Notifier;
  std::vector<Payload> encode(const Notification& n, const EncodeContext& ctx) const override {
    json arr = json::array();
    for (const auto& a : n.alerts) {
      json j = {{"labels", labelsJson(a.labels)},
                {"annotations", labelsJson(a.annotations)},
                {"startsAt", formatRfc3339(a.starts_at)},
                {"generatorURL", ctx.external_url + "/alerts"}};
      if (!a.firing) j["endsAt"] = formatRfc3339(a.ends_at);
      arr.push_back(j);
    }
    if (arr.empty()) return {};
    return {{arr.dump(), n.group_key}};
  }
};

}  // namespace

std::unique_ptr<Notifier> makeNotifier(const ReceiverSpec& spec) {
  switch (spec.kind) {
    case ReceiverKind::kWebhook: return std::make_unique<WebhookNotifier>(spec);
    case ReceiverKind::kSlack: return std::make_unique<SlackNotifier>(spec);
    case ReceiverKind::kPagerDuty: return std::make_unique<PagerDutyNotifier>(spec);
    case ReceiverKind::kAlertmanager: {
      ReceiverSpec s = spec;
      while (!s.url.empty() && s.url.back() == '/') s.url.pop_back();
      if (s.url.find("/api/v2/alerts") == std::string::npos) s.url += "/api/v2/alerts";
      return std::make_unique<AlertmanagerNotifier>(s);
    }
  }
  return nullptr;
}

}  // namespace greenlight::alerts
