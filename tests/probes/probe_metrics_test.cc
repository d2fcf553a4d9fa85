#include "greenlight/probes/probe_metrics.h"

#include <gtest/gtest.h>

#include <sstream>

namespace greenlight::probes {
namespace {

using namespace std::chrono_literals;

ProbeSpec spec(const std::string& name) {
  ProbeSpec p;
  p.name = name;
  p.labels = {{"oem", "bmw"}};
  StepSpec s;
  s.name = "main";
  s.url = "https://x/";
  p.steps.push_back(s);
  return p;
}

std::string text(const ProbeMetrics& m) { return m.exposition(); }

TEST(ProbeMetrics, BlackboxNamesWithProbeAndConfigLabels) {
  ProbeMetrics m;
  m.setProbe(spec("bmw-odometer"));
  ProbeResult r;
  r.probe = "bmw-odometer";
  r.success = true;
  r.duration = 250ms;
  StepResult st;
  st.name = "main";
  st.success = true;
  st.status = 200;
  st.http_version = 1.1;
  st.ssl = true;
  st.timings = {1ms, 2ms, 3ms, 40ms, 4ms};
  st.cert_earliest_expiry = WallTime(std::chrono::seconds(1800000000));
  r.steps.push_back(st);
  m.record(r, HealthState{Health::kHealthy, 0, 1}, WallTime(std::chrono::seconds(1700000000)));
  const std::string t = text(m);
  for (const char* want : {
           "probe_success{probe=\"bmw-odometer\",oem=\"bmw\"} 1",
           "probe_duration_seconds{probe=\"bmw-odometer\",oem=\"bmw\"} 0.25",
           "probe_http_duration_seconds{probe=\"bmw-odometer\",oem=\"bmw\",phase=\"processing\"} 0.04",
           "probe_http_status_code{probe=\"bmw-odometer\",oem=\"bmw\"} 200",
           "probe_http_version{probe=\"bmw-odometer\",oem=\"bmw\"} 1.1",
           "probe_http_ssl{probe=\"bmw-odometer\",oem=\"bmw\"} 1",
           "probe_ssl_earliest_cert_expiry{probe=\"bmw-odometer\",oem=\"bmw\"} 1800000000",
           "greenlight_probe_runs_total{probe=\"bmw-odometer\",oem=\"bmw\"} 1",
           "greenlight_probe_healthy{probe=\"bmw-odometer\",oem=\"bmw\"} 1",
           "greenlight_probe_duration_seconds_bucket{probe=\"bmw-odometer\",oem=\"bmw\",le=\"0.5\"} 1",
           "greenlight_probe_last_run_timestamp_seconds{probe=\"bmw-odometer\",oem=\"bmw\"} 1700000000",
       }) {
    EXPECT_NE(t.find(want), std::string::npos) << "missing " << want << "\n" << t;
  }
}

TEST(ProbeMetrics, FailuresAreCountedByReason) {
  ProbeMetrics m;
  m.setProbe(spec("a"));
  ProbeResult r;
  r.probe = "a";
  r.reason = FailureReason::kTimeout;
  m.record(r, {}, WallTime{});
  m.record(r, {}, WallTime{});
  r.reason = FailureReason::kStatus;
  m.record(r, {}, WallTime{});
  const std::string t = text(m);
  EXPECT_NE(t.find("greenlight_probe_failures_total{probe=\"a\",oem=\"bmw\",reason=\"timeout\"} 2"), std::string::npos) << t;
  EXPECT_NE(t.find("greenlight_probe_failures_total{probe=\"a\",oem=\"bmw\",reason=\"status\"} 1"), std::string::npos) << t;
  EXPECT_NE(t.find("probe_success{probe=\"a\",oem=\"bmw\"} 0"), std::string::npos) << t;
}

TEST(ProbeMetrics, NoValueIsExportedBeforeTheFirstRunAndNoneAfterRemoval) {
  ProbeMetrics m;
  m.setProbe(spec("a"));
  EXPECT_EQ(text(m).find("probe_success"), std::string::npos) << "no made-up value before a run";
  m.removeProbe("a");
  EXPECT_EQ(text(m).find("probe=\"a\""), std::string::npos);
}

TEST(ProbeMetrics, ConditionValuesNeverReachMetrics) {
  ProbeMetrics m;
  m.setProbe(spec("a"));
  ProbeResult r;
  r.probe = "a";
  StepResult st;
  st.name = "main";
  st.conditions.push_back({"[BODY].data.location.latitude > 0", true, "48.137154", ""});
  r.steps.push_back(st);
  m.record(r, {}, WallTime{});
  EXPECT_EQ(text(m).find("48.137154"), std::string::npos);
}

}  // namespace
}  // namespace greenlight::probes

namespace greenlight::probes {
namespace {

TEST(ProbeMetricsStreaming, PiecesAddUpToTheWholeAndARemovedProbeIsSkipped) {
  ProbeMetrics m;
  for (int i = 0; i < 50; ++i) {
    ProbeSpec s = spec("p" + std::to_string(i));
    m.setProbe(s);
    ProbeResult r;
    r.probe = s.name;
    r.success = i % 2 == 0;
    r.reason = r.success ? FailureReason::kNone : FailureReason::kStatus;
    m.record(r, {}, WallTime{});
  }
  const std::string whole = m.exposition();
  std::string pieces;
  auto cursor = m.begin();
  int calls = 0;
  while (m.next(*cursor, pieces, 256)) ++calls;
  EXPECT_GT(calls, 10) << "a small budget gives many pieces";
  EXPECT_EQ(pieces, whole);

  std::string partial;
  auto c2 = m.begin();
  ASSERT_TRUE(m.next(*c2, partial, 100));
  m.removeProbe("p49");
  while (m.next(*c2, partial, 100)) {
  }
  EXPECT_EQ(partial.find("probe=\"p49\""), std::string::npos);
  EXPECT_NE(partial.find("probe_success{probe=\"p48\",oem=\"bmw\"} 1"), std::string::npos);
}

}  // namespace
}  // namespace greenlight::probes
