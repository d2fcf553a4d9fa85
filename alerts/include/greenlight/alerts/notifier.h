// Receivers behind one interface. A Notifier turns a Notification into the payload(s) its
// service expects (encode, at enqueue time: what the outbox stores holds no secret), builds
// the HTTP request for a stored payload (URL and keys from config, at send time), and says
// what a reply means (delivered, retry later, or give up). Retries, back-off, timeouts and
// metrics are shared, in the Deliverer.
// Thread-safe after construction (const methods only).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "greenlight/alerts/dispatcher.h"

namespace greenlight::alerts {

struct HttpRequestSpec {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Duration timeout{std::chrono::seconds(10)};
  std::string ca_file;
  bool verify_tls = true;
};

struct HttpReply {
  int status = 0;              // 0: no reply (connect error, timeout)
  std::string error;           // transport error, when status is 0
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

enum class Verdict { kDelivered, kRetry, kGiveUp };
struct Outcome {
  Verdict verdict = Verdict::kRetry;
  std::optional<Duration> retry_after;  // what the receiver asked for (429)
  std::string why;
};

struct Payload {
  std::string body;
  std::string dedup_key;  // stable per group or alert, so a receiver can drop a repeat
};

enum class ReceiverKind { kWebhook, kSlack, kPagerDuty, kAlertmanager };

struct ReceiverSpec {
  std::string name;
  ReceiverKind kind = ReceiverKind::kWebhook;
  std::string url;
  std::string routing_key;  // PagerDuty
  Labels headers;           // extra HTTP headers (webhook), e.g. an Authorization
  Duration timeout{std::chrono::seconds(10)};
  bool send_resolved = true;
  int max_alerts = 0;       // webhook: 0 = all, else truncate (truncatedAlerts says how many)
  std::string ca_file;
  bool verify_tls = true;
  Duration resend_interval{std::chrono::minutes(1)};  // alertmanager: re-send firing alerts
};

struct EncodeContext {
  std::string external_url;
  WallTime now{};
};

class Notifier {
 public:
  explicit Notifier(ReceiverSpec spec) : spec_(std::move(spec)) {}
  virtual ~Notifier() = default;
  const ReceiverSpec& spec() const { return spec_; }
  // Nothing to send (e.g. a resolved notification to a receiver with send_resolved: false).
  virtual std::vector<Payload> encode(const Notification& n, const EncodeContext& ctx) const = 0;
  HttpRequestSpec request(const std::string& body) const;
  // 2xx delivered; 429, 5xx and no reply: retry (honouring Retry-After); other 4xx: give up.
  virtual Outcome classify(const HttpReply& reply) const;

 protected:
  virtual void addHeaders(HttpRequestSpec&) const {}
  // The stored payload as sent: a receiver whose body carries a key adds it here, so the key
  // never reaches the outbox on disk.
  virtual std::string bodyForSend(const std::string& stored) const { return stored; }
  ReceiverSpec spec_;
};

std::unique_ptr<Notifier> makeNotifier(const ReceiverSpec& spec);
const char* receiverKindName(ReceiverKind k);


}  // namespace greenlight::alerts
