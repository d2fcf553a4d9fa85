#include "greenlight/probes/probe_metrics.h"

#include <algorithm>
#include <limits>
#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

namespace greenlight::probes {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

const std::vector<double> kDurationBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,    2.5,   5,    10,  30};
const std::vector<double> kLatenessBounds = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                             0.05,   0.1,   0.25,  0.5,   1};

ClientMetric::Histogram toHistogram(const Histogram& h) {
  ClientMetric::Histogram out;
  out.sample_count = h.count;
  out.sample_sum = h.sum;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.counts.size(); ++i) {
    cumulative += h.counts[i];
    out.bucket.push_back({cumulative, i < h.bounds.size() ? h.bounds[i]
                                                          : std::numeric_limits<double>::infinity()});
  }
  return out;
}

}  // namespace

void Histogram::observe(double v) {
  size_t i = std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin();
  ++counts[i];
  ++count;
  sum += v;
}

struct ProbeMetrics::Series {
  std::vector<ClientMetric::Label> labels;  // probe first, then config labels
  bool has_result = false;
  bool kind_http = true;
  bool kind_tls = false;
  ProbeResult last;  // steps only: conditions' values are not exported
  uint64_t runs = 0;
  std::array<uint64_t, static_cast<size_t>(FailureReason::kCount)> failures{};
  uint64_t skipped = 0;
  Histogram duration{kDurationBounds};
  Health health = Health::kUnknown;
  double last_run_ts = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> step_runs;  // step -> (runs, failures)
};

ProbeMetrics::ProbeMetrics() : lateness_(kLatenessBounds) {}
ProbeMetrics::~ProbeMetrics() = default;

void ProbeMetrics::setProbe(const ProbeSpec& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& s = probes_[spec.name];
  if (!s) s = std::make_unique<Series>();
  s->labels.clear();
  s->labels.push_back({"probe", spec.name});
  for (const auto& [k, v] : spec.labels) s->labels.push_back({k, v});
  s->kind_http = spec.steps.back().kind == StepKind::kHttp || spec.steps.back().kind == StepKind::kOAuth2;
  s->kind_tls = spec.steps.back().kind == StepKind::kTls;
}

void ProbeMetrics::removeProbe(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  probes_.erase(name);
}

void ProbeMetrics::record(const ProbeResult& result, const HealthState& health, WallTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = probes_.find(result.probe);
  if (it == probes_.end()) return;
  Series& s = *it->second;
  s.has_result = true;
  s.last.success = result.success;
  s.last.duration = result.duration;
  s.last.steps.clear();
  for (const auto& st : result.steps) {
    StepResult copy = st;
    copy.conditions.clear();  // values seen stay out of metrics (they may be vehicle data)
    s.last.steps.push_back(std::move(copy));
    auto& sr = s.step_runs[st.name];
    ++sr.first;
    if (!st.success) ++sr.second;
  }
  ++s.runs;
  if (!result.success) ++s.failures[static_cast<size_t>(result.reason)];
  s.duration.observe(toSeconds(result.duration));
  s.health = health.health;
  s.last_run_ts = std::chrono::duration<double>(now.time_since_epoch()).count();
}

void ProbeMetrics::countSkipped(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = probes_.find(name); it != probes_.end()) ++it->second->skipped;
}

void ProbeMetrics::observeLateness(Duration lateness) {
  std::lock_guard<std::mutex> lock(mu_);
  lateness_.observe(toSeconds(lateness));
}

std::vector<MetricFamily> ProbeMetrics::Collect() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<MetricFamily> out;
  out.reserve(32);  // family() hands out references: no reallocation allowed
  auto family = [&out](const char* name, const char* help, MetricType type) -> MetricFamily& {
    out.push_back(MetricFamily{name, help, type, {}});
    return out.back();
  };
  auto gauge = [](MetricFamily& f, std::vector<ClientMetric::Label> labels, double v) {
    ClientMetric m;
    m.label = std::move(labels);
    m.gauge.value = v;
    f.metric.push_back(std::move(m));
  };
  auto counter = [](MetricFamily& f, std::vector<ClientMetric::Label> labels, double v) {
    ClientMetric m;
    m.label = std::move(labels);
    m.counter.value = v;
    f.metric.push_back(std::move(m));
  };
  auto with = [](const std::vector<ClientMetric::Label>& base, const char* k, std::string v) {
    auto l = base;
    l.push_back({k, std::move(v)});
    return l;
  };

  auto& success = family("probe_success", "1 if the probe passed every step and condition", MetricType::Gauge);
  auto& duration = family("probe_duration_seconds", "How long the last run took", MetricType::Gauge);
  auto& phases = family("probe_http_duration_seconds", "Duration of the last request by phase", MetricType::Gauge);
  auto& status = family("probe_http_status_code", "Status code of the last response (0 if none)", MetricType::Gauge);
  auto& version = family("probe_http_version", "HTTP version of the last response", MetricType::Gauge);
  auto& ssl = family("probe_http_ssl", "1 if the last request used TLS", MetricType::Gauge);
  auto& redirects = family("probe_http_redirects", "Redirects followed", MetricType::Gauge);
  auto& clen = family("probe_http_content_length", "Content-Length of the last response (-1 if none)", MetricType::Gauge);
  auto& blen = family("probe_http_uncompressed_body_length", "Body bytes of the last response", MetricType::Gauge);
  auto& expiry = family("probe_ssl_earliest_cert_expiry", "Unix time of the earliest certificate expiry in the presented chain", MetricType::Gauge);
  auto& dns = family("probe_dns_lookup_time_seconds", "Name resolution time", MetricType::Gauge);
  auto& runs = family("greenlight_probe_runs_total", "Probe runs", MetricType::Counter);
  auto& failures = family("greenlight_probe_failures_total", "Failed probe runs by reason", MetricType::Counter);
  auto& skipped = family("greenlight_probe_skipped_total", "Runs skipped because the previous one was still in flight", MetricType::Counter);
  auto& hist = family("greenlight_probe_duration_seconds", "Probe run duration", MetricType::Histogram);
  auto& healthy = family("greenlight_probe_healthy", "1 healthy, 0 unhealthy (after thresholds); absent until known", MetricType::Gauge);
  auto& last_run = family("greenlight_probe_last_run_timestamp_seconds", "Unix time of the last completed run (staleness check)", MetricType::Gauge);
  auto& step_success = family("greenlight_probe_step_success", "1 if the step passed in the last run", MetricType::Gauge);
  auto& step_duration = family("greenlight_probe_step_duration_seconds", "Duration of the step in the last run", MetricType::Gauge);
  auto& step_runs = family("greenlight_probe_step_runs_total", "Step executions", MetricType::Counter);
  auto& step_failures = family("greenlight_probe_step_failures_total", "Failed step executions", MetricType::Counter);

  for (const auto& [name, sp] : probes_) {
    const Series& s = *sp;
    counter(runs, s.labels, static_cast<double>(s.runs));
    if (s.skipped) counter(skipped, s.labels, static_cast<double>(s.skipped));
    for (size_t r = 1; r < s.failures.size(); ++r) {
      if (s.failures[r]) {
        counter(failures, with(s.labels, "reason", reasonName(static_cast<FailureReason>(r))),
                static_cast<double>(s.failures[r]));
      }
    }
    {
      ClientMetric m;
      m.label = s.labels;
      m.histogram = toHistogram(s.duration);
      hist.metric.push_back(std::move(m));
    }
    if (!s.has_result) continue;
    gauge(success, s.labels, s.last.success ? 1 : 0);
    gauge(duration, s.labels, toSeconds(s.last.duration));
    gauge(last_run, s.labels, s.last_run_ts);
    if (s.health != Health::kUnknown) gauge(healthy, s.labels, s.health == Health::kHealthy ? 1 : 0);
    // The last step that made a request stands for the probe (blackbox_exporter reports the
    // last response).
    const StepResult* last = nullptr;
    for (const auto& st : s.last.steps) if (!st.from_cache) last = &st;
    if (!last) continue;
    gauge(dns, s.labels, toSeconds(last->timings.resolve));
    if (last->cert_earliest_expiry) {
      gauge(expiry, s.labels, std::chrono::duration<double>(last->cert_earliest_expiry->time_since_epoch()).count());
    }
    if (s.kind_http) {
      gauge(phases, with(s.labels, "phase", "resolve"), toSeconds(last->timings.resolve));
      gauge(phases, with(s.labels, "phase", "connect"), toSeconds(last->timings.connect));
      gauge(phases, with(s.labels, "phase", "tls"), toSeconds(last->timings.tls));
      gauge(phases, with(s.labels, "phase", "processing"), toSeconds(last->timings.processing));
      gauge(phases, with(s.labels, "phase", "transfer"), toSeconds(last->timings.transfer));
      gauge(status, s.labels, last->status);
      gauge(version, s.labels, last->http_version);
      gauge(ssl, s.labels, last->ssl ? 1 : 0);
      gauge(redirects, s.labels, last->redirects);
      gauge(clen, s.labels, static_cast<double>(last->content_length));
      gauge(blen, s.labels, static_cast<double>(last->body_length));
    }
    if (s.last.steps.size() > 1) {
      for (const auto& st : s.last.steps) {
        gauge(step_success, with(s.labels, "step", st.name), st.success ? 1 : 0);
        gauge(step_duration, with(s.labels, "step", st.name), toSeconds(st.duration));
      }
      for (const auto& [step, counts] : s.step_runs) {
        counter(step_runs, with(s.labels, "step", step), static_cast<double>(counts.first));
        counter(step_failures, with(s.labels, "step", step), static_cast<double>(counts.second));
      }
    }
  }
  auto& late = family("greenlight_probe_scheduling_lateness_seconds",
                      "How late runs started against their planned time", MetricType::Histogram);
  ClientMetric m;
  m.histogram = toHistogram(lateness_);
  late.metric.push_back(std::move(m));
  auto& configured = family("greenlight_probes_configured", "Probes in the running config", MetricType::Gauge);
  gauge(configured, {}, static_cast<double>(probes_.size()));
  // Families with no series are left out of the exposition.
  out.erase(std::remove_if(out.begin(), out.end(), [](const MetricFamily& f) { return f.metric.empty(); }),
            out.end());
  return out;
}

}  // namespace greenlight::probes
