// libFuzzer target: YAML config loading (the reader and the probes section, the largest part a
// user writes). Any input either parses or yields errors that each name a position; none may
// crash or hang.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "greenlight/common/config_reader.h"
#include "greenlight/probes/probe_spec.h"

using namespace greenlight;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ConfigErrors errors;
  ConfigReader r("fuzz.yaml", errors, [](const std::string& name) -> std::optional<std::string> {
    if (name == "TOKEN") return std::string("0123456789abcdef");
    return std::nullopt;
  });
  auto root = r.loadString(text);
  if (root && root->IsMap()) {
    auto probes = probes::parseProbes(r, *root);
    (void)probes;
  }
  for (const auto& e : errors.all()) {
    if (e.toString().rfind("fuzz.yaml", 0) != 0) std::abort();  // every error says where
  }
  return 0;
}
