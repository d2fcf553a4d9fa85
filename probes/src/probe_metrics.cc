#include "greenlight/probes/probe_metrics.h"

namespace greenlight::probes {
namespace {

const std::vector<double> kDurationBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,    2.5,   5,    10,  30};
const std::vector<double> kLatenessBounds = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                             0.05,   0.1,   0.25,  0.5,   1};

double unixSeconds(WallTime t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

using LastStep = StepResult;  // kept without conditions, message or ip

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
    LastStep& kept = s.steps.emplace_back(st);
    kept.conditions = {};  // what conditions saw may be vehicle data: never in metrics
    kept.message = {};
    kept.ip = {};
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

namespace {

using Series = ProbeMetrics::Series;

// One metric family: whether a probe has series in it, and how to write them.
struct Family {
  const char* name;
  const char* help;
  const char* type;
  bool (*has)(const Series&);
  void (*write)(ExpositionWriter&, const char* name, const Series&);
};

bool always(const Series&) { return true; }
bool ran(const Series& s) { return s.has_result; }
bool ranRequest(const Series& s) { return s.has_result && s.lastRequest(); }
bool ranHttp(const Series& s) { return ranRequest(s) && s.kind_http; }
bool hasCert(const Series& s) { return ranRequest(s) && s.lastRequest()->cert_earliest_expiry; }
bool multiStep(const Series& s) { return s.has_result && s.steps.size() > 1; }
bool hasStepCounts(const Series& s) { return !s.step_runs.empty(); }
bool hasFailures(const Series& s) {
  for (size_t r = 1; r < s.failures.size(); ++r) {
    if (s.failures[r]) return true;
  }
  return false;
}

template <double (*value)(const Series&)>
void gauge(ExpositionWriter& w, const char* name, const Series& s) {
  w.sample(name, s.labels, "", value(s));
}

std::string stepLabel(const std::string& step) {
  std::string label = "step=\"";
  ExpositionWriter::appendEscaped(label, step);
  return label + '"';
}

template <double (*value)(const LastStep&)>
void perStep(ExpositionWriter& w, const char* name, const Series& s) {
  for (const auto& st : s.steps) w.sample(name, s.labels, stepLabel(st.name), value(st));
}

template <bool failures>
void stepCounts(ExpositionWriter& w, const char* name, const Series& s) {
  for (const auto& [step, counts] : s.step_runs) {
    w.sample(name, s.labels, stepLabel(step), double(failures ? counts.second : counts.first));
  }
}

void phases(ExpositionWriter& w, const char* name, const Series& s) {
  const PhaseTimings& t = s.lastRequest()->timings;
  w.sample(name, s.labels, "phase=\"resolve\"", toSeconds(t.resolve));
  w.sample(name, s.labels, "phase=\"connect\"", toSeconds(t.connect));
  w.sample(name, s.labels, "phase=\"tls\"", toSeconds(t.tls));
  w.sample(name, s.labels, "phase=\"processing\"", toSeconds(t.processing));
  w.sample(name, s.labels, "phase=\"transfer\"", toSeconds(t.transfer));
}

void failures(ExpositionWriter& w, const char* name, const Series& s) {
  for (size_t r = 1; r < s.failures.size(); ++r) {
    if (!s.failures[r]) continue;
    w.sample(name, s.labels, std::string("reason=\"") + reasonName(static_cast<FailureReason>(r)) + "\"",
             double(s.failures[r]));
  }
}

void durationHistogram(ExpositionWriter& w, const char* name, const Series& s) {
  w.histogram(name, s.labels, s.histogram);
}

const Family kFamilies[] = {
    {"probe_success", "1 if the probe passed every step and condition", "gauge", ran,
     gauge<[](const Series& s) { return s.success ? 1.0 : 0.0; }>},
    {"probe_duration_seconds", "How long the last run took", "gauge", ran,
     gauge<[](const Series& s) { return toSeconds(s.duration); }>},
    {"probe_http_duration_seconds", "Duration of the last request by phase", "gauge", ranHttp, phases},
    {"probe_http_status_code", "Status code of the last response (0 if none)", "gauge", ranHttp,
     gauge<[](const Series& s) { return double(s.lastRequest()->status); }>},
    {"probe_http_version", "HTTP version of the last response", "gauge", ranHttp,
     gauge<[](const Series& s) { return s.lastRequest()->http_version; }>},
    {"probe_http_ssl", "1 if the last request used TLS", "gauge", ranHttp,
     gauge<[](const Series& s) { return s.lastRequest()->ssl ? 1.0 : 0.0; }>},
    {"probe_http_redirects", "Redirects followed", "gauge", ranHttp,
     gauge<[](const Series& s) { return double(s.lastRequest()->redirects); }>},
    {"probe_http_content_length", "Content-Length of the last response (-1 if none)", "gauge", ranHttp,
     gauge<[](const Series& s) { return double(s.lastRequest()->content_length); }>},
    {"probe_http_uncompressed_body_length", "Body bytes of the last response", "gauge", ranHttp,
     gauge<[](const Series& s) { return double(s.lastRequest()->body_length); }>},
    {"probe_ssl_earliest_cert_expiry", "Unix time of the earliest certificate expiry in the presented chain",
     "gauge", hasCert, gauge<[](const Series& s) { return unixSeconds(*s.lastRequest()->cert_earliest_expiry); }>},
    {"probe_dns_lookup_time_seconds", "Name resolution time", "gauge", ranRequest,
     gauge<[](const Series& s) { return toSeconds(s.lastRequest()->timings.resolve); }>},
    {"greenlight_probe_runs_total", "Probe runs", "counter", always,
     gauge<[](const Series& s) { return double(s.runs); }>},
    {"greenlight_probe_failures_total", "Failed probe runs by reason", "counter", hasFailures, failures},
    {"greenlight_probe_skipped_total", "Runs skipped because the previous one was still in flight", "counter",
     [](const Series& s) { return s.skipped > 0; }, gauge<[](const Series& s) { return double(s.skipped); }>},
    {"greenlight_probe_duration_seconds", "Probe run duration", "histogram", always, durationHistogram},
    {"greenlight_probe_healthy", "1 healthy, 0 unhealthy (after thresholds); absent until known", "gauge",
     [](const Series& s) { return s.health != Health::kUnknown; },
     gauge<[](const Series& s) { return s.health == Health::kHealthy ? 1.0 : 0.0; }>},
    {"greenlight_probe_last_run_timestamp_seconds", "Unix time of the last completed run (staleness check)",
     "gauge", ran, gauge<[](const Series& s) { return s.last_run_ts; }>},
    {"greenlight_probe_step_success", "1 if the step passed in the last run", "gauge", multiStep,
     perStep<[](const LastStep& st) { return st.success ? 1.0 : 0.0; }>},
    {"greenlight_probe_step_duration_seconds", "Duration of the step in the last run", "gauge", multiStep,
     perStep<[](const LastStep& st) { return toSeconds(st.duration); }>},
    {"greenlight_probe_step_runs_total", "Step executions", "counter", hasStepCounts, stepCounts<false>},
    {"greenlight_probe_step_failures_total", "Failed step executions", "counter", hasStepCounts, stepCounts<true>},
};
constexpr size_t kFamilyCount = sizeof kFamilies / sizeof kFamilies[0];

}  // namespace

struct ProbeMetrics::ScrapeCursor final : Cursor {
  std::vector<std::string> names;  // the probes at the start of the scrape, in order
  size_t family = 0;
  size_t index = 0;
  bool header_written = false;
  bool totals_written = false;
};

std::unique_ptr<ExpositionSource::Cursor> ProbeMetrics::begin() const {
  auto c = std::make_unique<ScrapeCursor>();
  std::lock_guard<std::mutex> lock(mu_);
  c->names.reserve(probes_.size());
  for (const auto& [name, s] : probes_) c->names.push_back(name);
  return c;
}

bool ProbeMetrics::next(Cursor& base, std::string& out, size_t budget) const {
  auto& c = static_cast<ScrapeCursor&>(base);
  const size_t limit = out.size() + budget;
  std::lock_guard<std::mutex> lock(mu_);
  ExpositionWriter w(out);
  for (; c.family < kFamilyCount; ++c.family, c.index = 0, c.header_written = false) {
    const Family& f = kFamilies[c.family];
    for (; c.index < c.names.size(); ++c.index) {
      if (out.size() >= limit) return true;
      auto it = probes_.find(c.names[c.index]);
      if (it == probes_.end() || !f.has(*it->second)) continue;
      if (!c.header_written) {
        w.header(f.name, f.help, f.type);
        c.header_written = true;
      }
      f.write(w, f.name, *it->second);
    }
  }
  if (!c.totals_written) {
    c.totals_written = true;
    w.header("greenlight_probe_scheduling_lateness_seconds", "How late runs started against their planned time", "histogram");
    w.histogram("greenlight_probe_scheduling_lateness_seconds", "", lateness_);
    w.header("greenlight_probes_configured", "Probes in the running config", "gauge");
    w.sample("greenlight_probes_configured", "", "", double(probes_.size()));
  }
  return false;
}

}  // namespace greenlight::probes
