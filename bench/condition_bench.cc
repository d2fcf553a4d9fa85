// Micro-benchmark of the pure condition evaluator (run per probe result, on the loop thread).
#include <benchmark/benchmark.h>

#include "greenlight/probes/condition.h"

using namespace greenlight::probes;

static void BM_StatusCondition(benchmark::State& state) {
  auto c = parseCondition("[STATUS] == 200").value();
  Observation o;
  o.status = 200;
  for (auto _ : state) benchmark::DoNotOptimize(evaluate(c, o));
}
BENCHMARK(BM_StatusCondition);

static void BM_JsonPathCondition(benchmark::State& state) {
  auto c = parseCondition("[BODY].data.odometer.distance > 0").value();
  const std::string body = R"({"data":{"odometer":{"distance":12345.6,"unit":"km"}},"meta":{"oem":"bmw"}})";
  for (auto _ : state) {
    Observation o;  // a new result each time: the body is parsed once per result
    o.body = body;
    benchmark::DoNotOptimize(evaluate(c, o));
  }
}
BENCHMARK(BM_JsonPathCondition);
