#include "greenlight/probes/probe_run.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "greenlight/common/duration.h"

namespace greenlight::probes {
namespace {

std::string formEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string base64(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool usesPlaceholder(const StepSpec& s, Placeholder p) {
  for (const auto& c : effectiveConditions(s)) {
    if (c.left.placeholder == p || c.right.placeholder == p) return true;
  }
  for (const auto& c : s.captures) {
    if (c.operand.placeholder == p) return true;
  }
  return false;
}

bool needsBody(const StepSpec& s) {
  return s.kind == StepKind::kOAuth2 || usesPlaceholder(s, Placeholder::kBody);
}

}  // namespace

std::shared_ptr<ProbeRun> ProbeRun::start(std::shared_ptr<const ProbeSpec> spec, RunContext ctx,
                                          Done done) {
  auto run = std::make_shared<ProbeRun>(std::move(spec), ctx, std::move(done));
  run->started_ = ctx.scheduler.time().monotonicNow();
  run->deadline_ = run->started_ + run->spec_->timeout;
  run->result_.probe = run->spec_->name;
  run->result_.started_at = ctx.scheduler.time().wallNow();
  std::weak_ptr<ProbeRun> weak = run;
  run->deadline_timer_ = ctx.scheduler.scheduleAt(run->deadline_, [weak] {
    if (auto r = weak.lock()) r->onDeadline();
  });
  run->startAttempt();
  return run;
}

ProbeRun::ProbeRun(std::shared_ptr<const ProbeSpec> spec, RunContext ctx, Done done)
    : spec_(std::move(spec)), ctx_(ctx), done_(std::move(done)) {}

void ProbeRun::cancel() {
  if (finished_) return;
  finished_ = true;
  if (in_flight_) ctx_.transport.cancel(*in_flight_);
  in_flight_.reset();
  ctx_.scheduler.cancel(deadline_timer_);
  ctx_.scheduler.cancel(retry_timer_);
}

void ProbeRun::startAttempt() {
  ++result_.attempts;
  result_.steps.clear();
  captures_.clear();
  used_tokens_.clear();
  runStep(0);
}

std::string ProbeRun::substitute(const std::string& text) const {
  if (text.find("${") == std::string::npos) return text;
  std::string out;
  for (size_t i = 0; i < text.size();) {
    size_t close;
    if (text.compare(i, 2, "${") == 0 && (close = text.find('}', i)) != std::string::npos) {
      auto it = captures_.find(text.substr(i + 2, close - i - 2));
      if (it != captures_.end()) {
        out += it->second;
        i = close + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

void ProbeRun::runStep(size_t index) {
  if (index == spec_->steps.size()) {
    finishAttempt(true);
    return;
  }
  const StepSpec& s = spec_->steps[index];
  const MonoTime now = ctx_.scheduler.time().monotonicNow();
  TransportRequest req;
  req.kind = s.kind == StepKind::kOAuth2 ? StepKind::kHttp : s.kind;
  req.tls = spec_->tls;
  req.timeout = std::max<Duration>(deadline_ - now, std::chrono::milliseconds(1));
  req.keep_body = needsBody(s);
  req.keep_headers = usesPlaceholder(s, Placeholder::kHeader);
  req.max_body_bytes = s.max_body_bytes;
  req.http_version = s.http_version;
  if (s.kind == StepKind::kOAuth2) {
    const std::string key = TokenCache::keyOf(s.oauth2);
    if (auto token = ctx_.tokens.get(key, now)) {
      captures_[s.oauth2.capture_as] = *token;
      used_tokens_.push_back(key);
      StepResult step;
      step.name = s.name;
      step.success = true;
      step.from_cache = true;
      result_.steps.push_back(std::move(step));
      runStep(index + 1);
      return;
    }
    req.url = s.oauth2.token_url;
    req.method = "POST";
    req.follow_redirects = false;
    req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    req.headers.emplace_back("Accept", "application/json");
    req.body = "grant_type=client_credentials";
    if (!s.oauth2.scopes.empty()) {
      std::string scope;
      for (const auto& sc : s.oauth2.scopes) scope += (scope.empty() ? "" : " ") + sc;
      req.body += "&scope=" + formEncode(scope);
    }
    if (s.oauth2.basic_auth) {
      req.headers.emplace_back("Authorization", "Basic " + base64(formEncode(s.oauth2.client_id) + ":" +
                                                                  formEncode(s.oauth2.client_secret)));
    } else {
      req.body += "&client_id=" + formEncode(s.oauth2.client_id) +
                  "&client_secret=" + formEncode(s.oauth2.client_secret);
    }
  } else {
    req.url = substitute(s.url);
    req.method = s.method;
    req.body = substitute(s.body);
    req.follow_redirects = s.follow_redirects;
    req.max_redirects = s.max_redirects;
    for (const auto& [k, v] : s.headers) req.headers.emplace_back(k, substitute(v));
  }
  std::weak_ptr<ProbeRun> weak = shared_from_this();
  in_flight_step_ = index;
  in_flight_ = ctx_.transport.start(std::move(req), [weak, index, now](TransportResult r) {
    if (auto run = weak.lock()) run->onTransportDone(index, std::move(r), now);
  });
}

void ProbeRun::onTransportDone(size_t index, TransportResult r, MonoTime started) {
  in_flight_.reset();
  if (finished_) return;
  const StepSpec& s = spec_->steps[index];
  StepResult step;
  step.name = s.name;
  step.connected = r.connected;
  step.status = r.status;
  step.timings = r.timings;
  step.duration = r.total > Duration(0) ? r.total : ctx_.scheduler.time().monotonicNow() - started;
  step.http_version = r.http_version;
  step.ssl = r.ssl;
  step.redirects = r.redirects;
  step.content_length = r.content_length;
  step.body_length = r.body_length;
  step.cert_earliest_expiry = r.cert_earliest_expiry;
  step.ip = r.ip;
  if (r.error != FailureReason::kNone) {
    step.reason = r.error;
    step.message = r.error_message;
    stepDone(index, std::move(step));
    return;
  }
  Observation o;
  o.connected = r.connected;
  o.status = r.status;
  o.response_time = step.duration;
  o.ip = r.ip;
  if (r.cert_earliest_expiry) {
    o.certificate_expires_in = std::chrono::duration_cast<Duration>(*r.cert_earliest_expiry -
                                                                    ctx_.scheduler.time().wallNow());
  }
  o.headers = std::move(r.headers);
  o.body = r.body;
  o.body_truncated = r.body_truncated;

  if (s.kind == StepKind::kOAuth2) {
    const Observation::Json* json = nullptr;
    if (r.status != 200) {
      step.reason = FailureReason::kStatus;
      step.message = "token endpoint answered " + std::to_string(r.status);
    } else if (!(json = o.json())) {
      step.reason = FailureReason::kInvalidBody;
      step.message = "token endpoint answered with a body that is not JSON";
    } else {
      // Read through a condition-language path so no token reaches a log or a result.
      static const Operand kToken = parseCondition("[BODY].access_token == x")->left;
      static const Operand kExpires = parseCondition("[BODY].expires_in == x")->left;
      auto token = resolveText(kToken, o);
      auto expires = resolveText(kExpires, o);
      if (!token || token->empty()) {
        step.reason = FailureReason::kCapture;
        step.message = "token endpoint answer has no access_token";
      } else {
        double secs = expires ? std::atof(expires->c_str()) : 3600;
        Duration lifetime = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(secs));
        Duration keep = lifetime - s.oauth2.refresh_before;
        if (keep < lifetime / 2) keep = lifetime / 2;  // short-lived tokens: refresh at half-life
        const std::string key = TokenCache::keyOf(s.oauth2);
        ctx_.tokens.put(key, *token, ctx_.scheduler.time().monotonicNow() + keep);
        captures_[s.oauth2.capture_as] = *token;
        used_tokens_.push_back(key);
        step.success = true;
      }
    }
    stepDone(index, std::move(step));
    return;
  }

  bool ok = true;
  for (const auto& c : effectiveConditions(s)) {
    ConditionOutcome outcome = evaluate(c, o);
    if (!outcome.passed && ok) {
      ok = false;
      step.reason = reasonFor(c, outcome);
      step.message = c.text + " (got " + outcome.actual +
                     (outcome.error.empty() ? "" : ": " + outcome.error) + ")";
    }
    step.conditions.push_back(std::move(outcome));
  }
  if (ok) {
    for (const auto& cap : s.captures) {
      auto v = resolveText(cap.operand, o);
      if (!v) {
        ok = false;
        step.reason = FailureReason::kCapture;
        step.message = "capture " + cap.name + ": " + cap.source + " is missing";
        break;
      }
      captures_[cap.name] = *v;
    }
  }
  if (r.status == 401) {
    // A cached token the server no longer accepts: fetch a new one next time.
    for (const auto& key : used_tokens_) ctx_.tokens.invalidate(key);
  }
  step.success = ok;
  stepDone(index, std::move(step));
}

void ProbeRun::stepDone(size_t index, StepResult step) {
  const bool ok = step.success;
  if (!ok) {
    result_.reason = step.reason;
    result_.message = "step " + step.name + ": " + step.message;
  }
  result_.steps.push_back(std::move(step));
  if (ok) runStep(index + 1);
  else finishAttempt(false);
}

void ProbeRun::finishAttempt(bool success) {
  if (success) {
    result_.success = true;
    result_.reason = FailureReason::kNone;
    result_.message.clear();
    finish();
    return;
  }
  const RetryPolicy& rp = spec_->retry;
  if (result_.attempts < rp.attempts) {
    double factor = std::pow(2.0, result_.attempts - 1) * (0.8 + 0.4 * ctx_.random.uniform01());
    Duration wait = std::min<Duration>(
        std::chrono::duration_cast<Duration>(rp.backoff * factor), rp.max_backoff);
    if (ctx_.scheduler.time().monotonicNow() + wait < deadline_) {
      std::weak_ptr<ProbeRun> weak = shared_from_this();
      retry_timer_ = ctx_.scheduler.scheduleAfter(wait, [weak] {
        if (auto r = weak.lock(); r && !r->finished_) r->startAttempt();
      });
      return;
    }
  }
  finish();
}

void ProbeRun::onDeadline() {
  if (finished_) return;
  if (in_flight_) {
    ctx_.transport.cancel(*in_flight_);
    in_flight_.reset();
    StepResult step;
    step.name = spec_->steps[in_flight_step_].name;
    step.reason = FailureReason::kTimeout;
    step.message = "no answer within the probe's timeout of " + formatDuration(spec_->timeout);
    step.duration = ctx_.scheduler.time().monotonicNow() - started_;
    result_.steps.push_back(step);
    result_.reason = FailureReason::kTimeout;
    result_.message = "step " + step.name + ": " + step.message;
  }
  finish();
}

void ProbeRun::finish() {
  if (finished_) return;
  finished_ = true;
  ctx_.scheduler.cancel(deadline_timer_);
  ctx_.scheduler.cancel(retry_timer_);
  captures_.clear();  // captured values live only for the run
  result_.duration = ctx_.scheduler.time().monotonicNow() - started_;
  auto done = std::move(done_);
  done(std::move(result_));
}

}  // namespace greenlight::probes
