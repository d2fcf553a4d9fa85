// libFuzzer target: the condition language ("[BODY].vehicle.fuel.level >= 10"). Whatever parses
// is evaluated against a response with a JSON body; neither may crash, hang or read out of
// bounds, and a parse error always says why.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "greenlight/probes/condition.h"

using namespace greenlight::probes;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = parseCondition(text);
  if (!c.ok()) {
    if (c.status().message().empty()) std::abort();
    return 0;
  }
  static const std::string body =
      R"({"vehicle":{"fuel":{"level":42.5,"unit":"percent"},"doors":["closed","open"],"vin":"WBA0000"},"ok":true})";
  Observation o;
  o.connected = true;
  o.status = 200;
  o.response_time = std::chrono::milliseconds(120);
  o.headers = {{"content-type", "application/json"}};
  o.body = body;
  const ConditionOutcome out = evaluate(c.value(), o);
  if (out.condition.empty()) std::abort();
  (void)reasonFor(c.value(), out);
  for (const auto& operand : {c.value().left, c.value().right}) (void)resolveText(operand, o);
  return 0;
}
