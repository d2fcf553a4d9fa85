// libFuzzer target: JSON request bodies of the admin API (parseJsonBody). Any input parses within
// the limits or is refused with a 4xx; what parses can be dumped again.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "greenlight/common/json_body.h"

using namespace greenlight;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const JsonBody b = parseJsonBody(std::string_view(reinterpret_cast<const char*>(data), size));
  if (b.status.ok()) {
    (void)b.value.dump();
  } else if (b.http_status != 400 && b.http_status != 413) {
    std::abort();
  }
  return 0;
}
