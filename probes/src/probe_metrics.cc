#include "greenlight/probes/probe_metrics.h"

namespace greenlight::probes {
namespace {

const std::vector<double> kDurationBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,    2.5,   5,    10,  30};
const std::vector<double> kLatenessBounds = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                             0.05,   0.1,   0.25,  0.5,   1};

double unixSeconds(WallTime t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

// What the last run measured, without anything a condition saw (that may be vehicle data).
struct LastStep {
  std::string name;
  bool success = false;
  bool from_cache = false;
  int status = 0;
  Duration duration{0};
  PhaseTimings timings;
  double http_version = 0;
  bool ssl = false;
  int redirects = 0;
  int64_t content_length = -1;
  int64_t body_length = 0;
  std::optional<WallTime> cert_earliest_expiry;
};

}  // namespace

struct ProbeMetrics::Series {
  std::string labels;  // preformatted `{probe="x",oem="bmw"`
  bool kind_http = true;
  bool has_result = false;
  bool success = false;
  Duration duration{0};
  std::vector<LastStep> steps;
  uint64_t runs = 0;
  std::array<uint64_t, static_cast<size_t>(FailureReason::kCount)> failures{};
  uint64_t skipped = 0;
  FixedHistogram histogram{&kDurationBounds};
  Health health = Health::kUnknown;
  double last_run_ts = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> step_runs;  // step -> (runs, failures)

  // The last step that made a request stands for the probe (blackbox_exporter reports the
  // last response).
  const LastStep* lastRequest() const {
    const LastStep* last = nullptr;
    for (const auto& s : steps) {
      if (!s.from_cache) last = &s;
    }
    return last;
  }
};

ProbeMetrics::ProbeMetrics() : lateness_(&kLatenessBounds) {}
ProbeMetrics::~ProbeMetrics() = default;

void ProbeMetrics::setProbe(const ProbeSpec& spec) {
  std::vector<std::pair<std::string, std::string>> labels = {{"probe", spec.name}};
  labels.insert(labels.end(), spec.labels.begin(), spec.labels.end());
  std::string prefix = ExpositionWriter::labelPrefix(labels);
  std::lock_guard<std::mutex> lock(mu_);
  auto& s = probes_[spec.name];
  if (!s) s = std::make_unique<Series>();
  s->labels = std::move(prefix);
  s->kind_http = spec.steps.back().kind == StepKind::kHttp;
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
  s.success = result.success;
  s.duration = result.duration;
  s.steps.clear();
  for (const auto& st : result.steps) {
    s.steps.push_back({st.name, st.success, st.from_cache, st.status, st.duration, st.timings,
                       st.http_version, st.ssl, st.redirects, st.content_length, st.body_length,
                       st.cert_earliest_expiry});
    if (result.steps.size() > 1) {
      auto& sr = s.step_runs[st.name];
      ++sr.first;
      if (!st.success) ++sr.second;
    }
  }
  ++s.runs;
  if (!result.success) ++s.failures[static_cast<size_t>(result.reason)];
  s.histogram.observe(toSeconds(result.duration));
  s.health = health.health;
  s.last_run_ts = unixSeconds(now);
}

void ProbeMetrics::countSkipped(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = probes_.find(name); it != probes_.end()) ++it->second->skipped;
}

void ProbeMetrics::observeLateness(Duration lateness) {
  std::lock_guard<std::mutex> lock(mu_);
  lateness_.observe(toSeconds(lateness));
}

void ProbeMetrics::appendExposition(std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  ExpositionWriter w(out);
  out.reserve(out.size() + probes_.size() * 2048);
  // One family at a time, every probe in it; families with no series are left out.
  auto family = [&](const char* name, const char* help, const char* type, auto&& has, auto&& write) {
    bool any = false;
    for (const auto& [n, s] : probes_) any = any || has(*s);
    if (!any) return;
    w.header(name, help, type);
    for (const auto& [n, s] : probes_) {
      if (has(*s)) write(*s);
    }
  };
  auto always = [](const Series&) { return true; };
  auto ran = [](const Series& s) { return s.has_result; };
  auto ranHttp = [](const Series& s) { return s.has_result && s.kind_http && s.lastRequest(); };
  auto ranRequest = [](const Series& s) { return s.has_result && s.lastRequest(); };
  auto gauge = [&](const char* name, const char* help, auto&& has, auto&& value) {
    family(name, help, "gauge", has, [&](const Series& s) { w.sample(name, s.labels, "", value(s)); });
  };

  gauge("probe_success", "1 if the probe passed every step and condition", ran,
        [](const Series& s) { return s.success ? 1.0 : 0.0; });
  gauge("probe_duration_seconds", "How long the last run took", ran,
        [](const Series& s) { return toSeconds(s.duration); });
  family("probe_http_duration_seconds", "Duration of the last request by phase", "gauge", ranHttp,
         [&](const Series& s) {
           const PhaseTimings& t = s.lastRequest()->timings;
           w.sample("probe_http_duration_seconds", s.labels, "phase=\"resolve\"", toSeconds(t.resolve));
           w.sample("probe_http_duration_seconds", s.labels, "phase=\"connect\"", toSeconds(t.connect));
           w.sample("probe_http_duration_seconds", s.labels, "phase=\"tls\"", toSeconds(t.tls));
           w.sample("probe_http_duration_seconds", s.labels, "phase=\"processing\"", toSeconds(t.processing));
           w.sample("probe_http_duration_seconds", s.labels, "phase=\"transfer\"", toSeconds(t.transfer));
         });
  gauge("probe_http_status_code", "Status code of the last response (0 if none)", ranHttp,
        [](const Series& s) { return double(s.lastRequest()->status); });
  gauge("probe_http_version", "HTTP version of the last response", ranHttp,
        [](const Series& s) { return s.lastRequest()->http_version; });
  gauge("probe_http_ssl", "1 if the last request used TLS", ranHttp,
        [](const Series& s) { return s.lastRequest()->ssl ? 1.0 : 0.0; });
  gauge("probe_http_redirects", "Redirects followed", ranHttp,
        [](const Series& s) { return double(s.lastRequest()->redirects); });
  gauge("probe_http_content_length", "Content-Length of the last response (-1 if none)", ranHttp,
        [](const Series& s) { return double(s.lastRequest()->content_length); });
  gauge("probe_http_uncompressed_body_length", "Body bytes of the last response", ranHttp,
        [](const Series& s) { return double(s.lastRequest()->body_length); });
  gauge("probe_ssl_earliest_cert_expiry", "Unix time of the earliest certificate expiry in the presented chain",
        [](const Series& s) { return s.has_result && s.lastRequest() && s.lastRequest()->cert_earliest_expiry; },
        [](const Series& s) { return unixSeconds(*s.lastRequest()->cert_earliest_expiry); });
  gauge("probe_dns_lookup_time_seconds", "Name resolution time", ranRequest,
        [](const Series& s) { return toSeconds(s.lastRequest()->timings.resolve); });

  family("greenlight_probe_runs_total", "Probe runs", "counter", always,
         [&](const Series& s) { w.sample("greenlight_probe_runs_total", s.labels, "", double(s.runs)); });
  family("greenlight_probe_failures_total", "Failed probe runs by reason", "counter",
         [](const Series& s) {
           for (size_t r = 1; r < s.failures.size(); ++r) if (s.failures[r]) return true;
           return false;
         },
         [&](const Series& s) {
           for (size_t r = 1; r < s.failures.size(); ++r) {
             if (!s.failures[r]) continue;
             std::string reason = std::string("reason=\"") + reasonName(static_cast<FailureReason>(r)) + "\"";
             w.sample("greenlight_probe_failures_total", s.labels, reason, double(s.failures[r]));
           }
         });
  family("greenlight_probe_skipped_total", "Runs skipped because the previous one was still in flight",
         "counter", [](const Series& s) { return s.skipped > 0; },
         [&](const Series& s) { w.sample("greenlight_probe_skipped_total", s.labels, "", double(s.skipped)); });
  family("greenlight_probe_duration_seconds", "Probe run duration", "histogram", always,
         [&](const Series& s) { w.histogram("greenlight_probe_duration_seconds", s.labels, s.histogram); });
  gauge("greenlight_probe_healthy", "1 healthy, 0 unhealthy (after thresholds); absent until known",
        [](const Series& s) { return s.health != Health::kUnknown; },
        [](const Series& s) { return s.health == Health::kHealthy ? 1.0 : 0.0; });
  gauge("greenlight_probe_last_run_timestamp_seconds", "Unix time of the last completed run (staleness check)",
        ran, [](const Series& s) { return s.last_run_ts; });
  auto multiStep = [](const Series& s) { return s.has_result && s.steps.size() > 1; };
  auto perStep = [&](const char* name, auto&& value) {
    return [&w, name, value](const Series& s) {
      for (const auto& st : s.steps) {
        std::string step = "step=\"";
        ExpositionWriter::appendEscaped(step, st.name);
        step += '"';
        w.sample(name, s.labels, step, value(st));
      }
    };
  };
  family("greenlight_probe_step_success", "1 if the step passed in the last run", "gauge", multiStep,
         perStep("greenlight_probe_step_success", [](const LastStep& st) { return st.success ? 1.0 : 0.0; }));
  family("greenlight_probe_step_duration_seconds", "Duration of the step in the last run", "gauge", multiStep,
         perStep("greenlight_probe_step_duration_seconds", [](const LastStep& st) { return toSeconds(st.duration); }));
  auto stepCounter = [&](const char* name, bool failures) {
    return [&w, name, failures](const Series& s) {
      for (const auto& [step, counts] : s.step_runs) {
        std::string label = "step=\"";
        ExpositionWriter::appendEscaped(label, step);
        label += '"';
        w.sample(name, s.labels, label, double(failures ? counts.second : counts.first));
      }
    };
  };
  auto hasSteps = [](const Series& s) { return !s.step_runs.empty(); };
  family("greenlight_probe_step_runs_total", "Step executions", "counter", hasSteps,
         stepCounter("greenlight_probe_step_runs_total", false));
  family("greenlight_probe_step_failures_total", "Failed step executions", "counter", hasSteps,
         stepCounter("greenlight_probe_step_failures_total", true));

  w.header("greenlight_probe_scheduling_lateness_seconds", "How late runs started against their planned time", "histogram");
  w.histogram("greenlight_probe_scheduling_lateness_seconds", "", lateness_);
  w.header("greenlight_probes_configured", "Probes in the running config", "gauge");
  w.sample("greenlight_probes_configured", "", "", double(probes_.size()));
}

}  // namespace greenlight::probes
