#include "greenlight/alerts/outbox.h"
#include "greenlight/common/time_format.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <nlohmann/json.hpp>

#include "greenlight/common/files.h"

namespace greenlight::alerts {

using nlohmann::json;

Deliverer::Deliverer(const TimeSource& time, RandomSource& random, std::unique_ptr<HttpClient> http,
                     std::string state_file, RetryPolicy retry, prometheus::Registry& registry,
                     std::optional<AesKey> state_key)
    : time_(time), random_(random), http_(std::move(http)), state_file_(std::move(state_file)),
      state_key_(std::move(state_key)), retry_(retry),
      registry_(registry) {
  notifications_ = &prometheus::BuildCounter()
                        .Name("greenlight_notifications_total")
                        .Help("Notification deliveries by receiver and outcome (sent, failed, retried, dropped)")
                        .Register(registry_);
  depth_ = &prometheus::BuildGauge()
                .Name("greenlight_notification_outbox_depth")
                .Help("Notifications waiting in the outbox")
                .Register(registry_)
                .Add({});
  latency_ = &prometheus::BuildHistogram()
                  .Name("greenlight_notification_latency_seconds")
                  .Help("From an alert starting to fire to its receiver accepting the notification")
                  .Register(registry_)
                  .Add({}, prometheus::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30, 60, 300});
}

Deliverer::~Deliverer() { stop(); }

Deliverer::ReceiverMetrics& Deliverer::metricsFor(const std::string& receiver) {
  auto [it, created] = receiver_metrics_.try_emplace(receiver);
  if (created) {
    it->second.sent = &notifications_->Add({{"receiver", receiver}, {"outcome", "sent"}});
    it->second.failed = &notifications_->Add({{"receiver", receiver}, {"outcome", "failed"}});
    it->second.retried = &notifications_->Add({{"receiver", receiver}, {"outcome", "retried"}});
    it->second.dropped = &notifications_->Add({{"receiver", receiver}, {"outcome", "dropped"}});
  }
  return it->second;
}

Status Deliverer::load() {
  if (state_file_.empty() || !std::filesystem::exists(state_file_)) return Status::Ok();
  auto text = readStateFile(state_file_, state_key_, "outbox");
  if (!text.ok()) return text.status();
  std::lock_guard<std::mutex> lock(mu_);
  try {
    const json j = json::parse(text.value());
    for (const auto& e : j.at("entries")) {
      OutboxEntry o;
      o.id = e.at("id").get<std::string>();
      o.receiver = e.at("receiver").get<std::string>();
      o.payload.body = e.at("body").get<std::string>();
      o.payload.dedup_key = e.value("dedup_key", "");
      o.created = fromUnixMillis(e.at("created_ms").get<int64_t>());
      o.first_alert_start = fromUnixMillis(e.value("first_alert_start_ms", int64_t{0}));
      o.attempts = e.value("attempts", 0);
      o.next_attempt = fromUnixMillis(e.value("next_attempt_ms", int64_t{0}));
      o.group_key = e.value("group_key", "");
      if (e.contains("sent")) o.sent = e.at("sent").get<std::map<std::string, bool>>();
      o.seq = e.value("seq", uint64_t{0});  // an older file has none: the id's number
      if (o.seq == 0 && o.id.size() > 1) o.seq = std::strtoull(o.id.c_str() + 1, nullptr, 10);
      entries_[o.seq] = o;
    }
    next_id_ = j.value("next_id", uint64_t{1});
    if (!entries_.empty()) next_id_ = std::max(next_id_, entries_.rbegin()->first + 1);
  } catch (const std::exception& e) {
    entries_.clear();
    return InvalidArgument(state_file_ + ": not a valid outbox file (" + e.what() + "); move it away to start empty");
  }
  depth_->Set(static_cast<double>(entries_.size()));
  if (!entries_.empty()) spdlog::info("outbox: {} notification(s) left by the previous run will be sent", entries_.size());
  return Status::Ok();
}

Status Deliverer::persistLocked() {
  depth_->Set(static_cast<double>(entries_.size()));
  if (state_file_.empty()) return Status::Ok();
  json arr = json::array();
  for (const auto& [seq, e] : entries_) {
    arr.push_back({{"id", e.id},
                   {"receiver", e.receiver},
                   {"body", e.payload.body},
                   {"dedup_key", e.payload.dedup_key},
                   {"created_ms", toUnixMillis(e.created)},
                   {"first_alert_start_ms", toUnixMillis(e.first_alert_start)},
                   {"attempts", e.attempts},
                   {"next_attempt_ms", toUnixMillis(e.next_attempt)},
                   {"group_key", e.group_key},
                   {"sent", e.sent},
                   {"seq", e.seq}});
  }
  json j = {{"version", 1}, {"next_id", next_id_}, {"entries", arr}};
  Status s = writeStateFile(state_file_, j.dump(), state_key_, "outbox");
  if (!s.ok()) spdlog::error("outbox: cannot write {}: {}", state_file_, s.message());
  return s;
}

void Deliverer::setReceivers(std::map<std::string, std::shared_ptr<const Notifier>> receivers) {
  std::lock_guard<std::mutex> lock(mu_);
  receivers_ = std::move(receivers);
  for (const auto& [name, n] : receivers_) metricsFor(name);
  cv_.notify_all();
}

size_t Deliverer::enqueue(const Notification& n, const EncodeContext& ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = receivers_.find(n.receiver);
  if (it == receivers_.end()) {
    spdlog::error("outbox: no receiver named {}; notification for {} dropped", n.receiver, n.group_key);
    return 0;
  }
  WallTime first{};
  std::map<std::string, bool> sent;
  for (const auto& a : n.alerts) {
    if (a.firing && (first == WallTime{} || a.starts_at < first)) first = a.starts_at;
    sent[a.fingerprint] = a.firing;
  }
  size_t count = 0;
  for (auto& p : it->second->encode(n, ctx)) {
    OutboxEntry e;
    e.seq = next_id_++;
    e.id = "n" + std::to_string(e.seq);
    e.receiver = n.receiver;
    e.payload = std::move(p);
    e.created = ctx.now;
    e.first_alert_start = first;
    e.next_attempt = ctx.now;
    e.group_key = n.group_key;
    e.sent = sent;
    e.held = true;
    entries_[e.seq] = std::move(e);
    ++count;
  }
  if (count > 0) (void)persistLocked();  // logged inside; delivery still goes ahead from memory
  return count;
}

void Deliverer::release() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [seq, e] : entries_) e.held = false;
  cv_.notify_all();
}

void Deliverer::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void Deliverer::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

size_t Deliverer::depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

std::vector<OutboxEntry> Deliverer::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<OutboxEntry> out;
  for (const auto& [seq, e] : entries_) out.push_back(e);
  return out;
}

Duration Deliverer::backoff(int attempts, std::optional<Duration> asked) {
  if (asked) return std::min(*asked, retry_.max);
  // initial * 2^(attempts-1), capped, with "full jitter" on the upper half.
  double d = toSeconds(retry_.initial) * std::pow(2.0, std::max(0, attempts - 1));
  d = std::min(d, toSeconds(retry_.max));
  d = d / 2 + random_.uniform01() * d / 2;
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(d));
}

const OutboxEntry* Deliverer::pickDue(const std::map<uint64_t, OutboxEntry>& entries,
                                      const std::function<bool(const std::string&)>& has_receiver, WallTime now,
                                      WallTime& next) {
  const OutboxEntry* due = nullptr;
  std::set<std::pair<std::string, std::string>> heads;  // (receiver, group) with an older entry waiting
  for (const auto& [seq, e] : entries) {
    if (e.held) continue;
    if (!has_receiver(e.receiver)) continue;  // its receiver is gone from config: kept for a reload
    // One group's notifications reach its receiver in the order they were made: a "resolved"
    // must not overtake the "firing" still being retried (PagerDuty would reopen the incident).
    if (!e.group_key.empty() && !heads.insert({e.receiver, e.group_key}).second) continue;
    if (e.next_attempt <= now && (!due || e.next_attempt < due->next_attempt)) due = &e;
    next = std::min(next, e.next_attempt);
  }
  return due;
}

void Deliverer::removeLocked(uint64_t seq) {
  entries_.erase(seq);
  (void)persistLocked();
}

void Deliverer::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const WallTime now = time_.wallNow();
    WallTime next = WallTime::max();
    const OutboxEntry* due = pickDue(entries_, [&](const std::string& r) { return receivers_.count(r) > 0; }, now, next);
    if (!due) {
      if (next == WallTime::max()) {
        cv_.wait(lock);
      } else {
        cv_.wait_for(lock, next - now);
      }
      continue;
    }
    OutboxEntry entry = *due;
    auto notifier = receivers_.at(entry.receiver);
    lock.unlock();
    const HttpReply reply = http_->send(notifier->request(entry.payload.body));
    const Outcome outcome = notifier->classify(reply);
    lock.lock();
    if (!entries_.count(entry.seq)) continue;
    ReceiverMetrics& m = metricsFor(entry.receiver);
    const WallTime after = time_.wallNow();
    if (outcome.verdict == Verdict::kDelivered) {
      m.sent->Increment();
      if (entry.first_alert_start != WallTime{}) latency_->Observe(std::max(0.0, toSeconds(after - entry.first_alert_start)));
      removeLocked(entry.seq);
      continue;
    }
    m.failed->Increment();
    if (outcome.verdict == Verdict::kGiveUp || after - entry.created > retry_.max_age) {
      m.dropped->Increment();
      spdlog::error("notification to {} dropped after {} attempt(s): {}", entry.receiver, entry.attempts + 1,
                    outcome.why);
      removeLocked(entry.seq);
      continue;
    }
    OutboxEntry& e = entries_.at(entry.seq);
    ++e.attempts;
    e.last_error = outcome.why;
    const Duration wait = backoff(e.attempts, outcome.retry_after);
    e.next_attempt = after + std::chrono::duration_cast<WallTime::duration>(wait);
    m.retried->Increment();
    spdlog::warn("notification to {} failed ({}); retry {} in {:.1f} s", entry.receiver, outcome.why, e.attempts,
                 toSeconds(wait));
    (void)persistLocked();
  }
}

}  // namespace greenlight::alerts
