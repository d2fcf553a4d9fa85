#include "greenlight/alerts/notifier.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "greenlight/common/time_format.h"

namespace greenlight::alerts {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

ReceiverSpec receiver(const std::string& name, ReceiverKind kind, const std::string& url) {
  ReceiverSpec r;
  r.name = name;
  r.kind = kind;
  r.url = url;
  return r;
}

WallTime t(const char* s) { return parseRfc3339(s).value(); }

Notification sample(bool firing) {
  Notification n;
  n.receiver = "oncall";
  n.group_key = "{}:{alertname=\"ProbeFailing\"}";
  n.firing = firing;
  n.group_labels = {{"alertname", "ProbeFailing"}};
  n.common_labels = {{"alertname", "ProbeFailing"}, {"severity", "page"}};
  n.common_annotations = {{"summary", "BMW odometer probe failing"}};
  Alert a;
  a.labels = {{"alertname", "ProbeFailing"}, {"severity", "page"}, {"oem", "bmw"}};
  a.annotations = {{"summary", "BMW odometer probe failing"}, {"runbook_url", "https://runbooks.example/probe"}};
  a.firing = firing;
  a.starts_at = t("2026-11-26T10:00:00Z");
  a.ends_at = firing ? WallTime{} : t("2026-11-26T10:05:30.250Z");
  a.fingerprint = fingerprint(a.labels);
  n.alerts = {a};
  return n;
}

TEST(WebhookNotifierTest, PayloadIsAlertmanagersVersion4Exactly) {
  auto n = makeNotifier(receiver("oncall", ReceiverKind::kWebhook, "http://127.0.0.1:1/hook"));
  const auto payloads = n->encode(sample(true), {"https://greenlight.example:9443", WallTime{}});
  ASSERT_EQ(payloads.size(), 1u);
  const json expected = json::parse(R"({"version":"4","groupKey":"{}:{alertname=\"ProbeFailing\"}","truncatedAlerts":0,
    "status":"firing","receiver":"oncall","groupLabels":{"alertname":"ProbeFailing"},
    "commonLabels":{"alertname":"ProbeFailing","severity":"page"},
    "commonAnnotations":{"summary":"BMW odometer probe failing"},
    "externalURL":"https://greenlight.example:9443","alerts":[{"status":"firing",
     "labels":{"alertname":"ProbeFailing","severity":"page","oem":"bmw"},
     "annotations":{"summary":"BMW odometer probe failing","runbook_url":"https://runbooks.example/probe"},
     "startsAt":"2026-11-26T10:00:00Z","endsAt":"0001-01-01T00:00:00Z",
     "generatorURL":"https://greenlight.example:9443/alerts","fingerprint":")" +
                                    fingerprint({{"alertname", "ProbeFailing"}, {"severity", "page"}, {"oem", "bmw"}}) +
                                    R"("}]})");
  EXPECT_EQ(json::parse(payloads[0].body), expected);
  EXPECT_EQ(payloads[0].dedup_key, sample(true).group_key);
}

TEST(WebhookNotifierTest, ResolvedCarriesEndsAtAndTruncationIsCounted) {
  ReceiverSpec spec = receiver("oncall", ReceiverKind::kWebhook, "http://127.0.0.1:1/hook");
  spec.max_alerts = 1;
  auto n = makeNotifier(spec);
  Notification two = sample(false);
  two.alerts.push_back(two.alerts[0]);
  two.alerts[1].labels["oem"] = "ford";
  const json j = json::parse(n->encode(two, {"", WallTime{}}).at(0).body);
  EXPECT_EQ(j["status"], "resolved");
  EXPECT_EQ(j["truncatedAlerts"], 1);
  EXPECT_EQ(j["alerts"].size(), 1u);
  EXPECT_EQ(j["alerts"][0]["endsAt"], "2026-11-26T10:05:30.250Z");
}

TEST(WebhookNotifierTest, SendResolvedFalseSendsNothingWhenResolved) {
  ReceiverSpec spec = receiver("oncall", ReceiverKind::kWebhook, "http://127.0.0.1:1/hook");
  spec.send_resolved = false;
  EXPECT_TRUE(makeNotifier(spec)->encode(sample(false), {}).empty());
  EXPECT_EQ(makeNotifier(spec)->encode(sample(true), {}).size(), 1u);
}

TEST(PagerDutyNotifierTest, TriggerAndResolveShareTheDedupKey) {
  ReceiverSpec spec = receiver("pager", ReceiverKind::kPagerDuty, "http://127.0.0.1:1/v2/enqueue");
  spec.routing_key = "0123456789abcdef0123456789abcdef";
  auto n = makeNotifier(spec);
  const json trigger = json::parse(n->encode(sample(true), {"https://gl.example", WallTime{}}).at(0).body);
  const json resolve = json::parse(n->encode(sample(false), {"https://gl.example", WallTime{}}).at(0).body);
  EXPECT_EQ(trigger["event_action"], "trigger");
  EXPECT_EQ(resolve["event_action"], "resolve");
  EXPECT_EQ(trigger["dedup_key"], resolve["dedup_key"]);
  EXPECT_EQ(trigger["dedup_key"].get<std::string>().size(), 32u);
  EXPECT_FALSE(trigger.contains("routing_key")) << "a key must not be stored in the outbox";
  const json sent = json::parse(n->request(trigger.dump()).body);
  EXPECT_EQ(sent["routing_key"], spec.routing_key);
  EXPECT_EQ(sent["dedup_key"], trigger["dedup_key"]);
  EXPECT_EQ(trigger["payload"]["summary"], "BMW odometer probe failing");
  EXPECT_EQ(trigger["payload"]["severity"], "critical");
  EXPECT_EQ(trigger["payload"]["source"], "https://gl.example");
  EXPECT_EQ(trigger["payload"]["timestamp"], "2026-11-26T10:00:00Z");
  EXPECT_EQ(trigger["links"][0]["href"], "https://runbooks.example/probe");
  EXPECT_FALSE(resolve.contains("payload"));
}

TEST(SlackNotifierTest, TextNamesTheAlertAndHonoursRetryAfter) {
  auto n = makeNotifier(receiver("slack", ReceiverKind::kSlack, "http://127.0.0.1:1/services/x"));
  const json j = json::parse(n->encode(sample(true), {"https://gl.example", WallTime{}}).at(0).body);
  const std::string text = j["text"];
  EXPECT_EQ(text.rfind("[FIRING:1] ProbeFailing", 0), 0u) << text;
  EXPECT_NE(text.find("BMW odometer probe failing"), std::string::npos);
  HttpReply limited;
  limited.status = 429;
  limited.body = R"({"ok":false,"retry_after":7})";
  const Outcome o = n->classify(limited);
  EXPECT_EQ(o.verdict, Verdict::kRetry);
  ASSERT_TRUE(o.retry_after.has_value());
  EXPECT_EQ(*o.retry_after, 7s);
}

TEST(NotifierTest, ClassifiesReplies) {
  auto n = makeNotifier(receiver("oncall", ReceiverKind::kWebhook, "http://127.0.0.1:1/hook"));
  auto reply = [](int status, std::map<std::string, std::string> headers = {}) {
    HttpReply r;
    r.status = status;
    r.headers = std::move(headers);
    if (status == 0) r.error = "Connection refused";
    return r;
  };
  EXPECT_EQ(n->classify(reply(200)).verdict, Verdict::kDelivered);
  EXPECT_EQ(n->classify(reply(202)).verdict, Verdict::kDelivered);
  EXPECT_EQ(n->classify(reply(500)).verdict, Verdict::kRetry);
  EXPECT_EQ(n->classify(reply(0)).verdict, Verdict::kRetry);
  EXPECT_EQ(n->classify(reply(400)).verdict, Verdict::kGiveUp);
  const Outcome o = n->classify(reply(503, {{"retry-after", "12"}}));
  EXPECT_EQ(o.retry_after.value(), 12s);
}

TEST(AlertmanagerNotifierTest, PostsAlertsToApiV2) {
  auto n = makeNotifier(receiver("am", ReceiverKind::kAlertmanager, "http://127.0.0.1:9093/"));
  EXPECT_EQ(n->request("[]").url, "http://127.0.0.1:9093/api/v2/alerts");
  const json firing = json::parse(n->encode(sample(true), {"https://gl.example", WallTime{}}).at(0).body);
  ASSERT_TRUE(firing.is_array());
  EXPECT_EQ(firing[0]["labels"]["oem"], "bmw");
  EXPECT_EQ(firing[0]["startsAt"], "2026-11-26T10:00:00Z");
  EXPECT_FALSE(firing[0].contains("endsAt"));
  const json resolved = json::parse(n->encode(sample(false), {"", WallTime{}}).at(0).body);
  EXPECT_EQ(resolved[0]["endsAt"], "2026-11-26T10:05:30.250Z");
}

}  // namespace
}  // namespace greenlight::alerts
