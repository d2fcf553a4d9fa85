// JSON request bodies from the network, parsed with limits: at most `max_bytes`, nested at most
// `max_depth` deep, valid UTF-8 only. A hostile body (a deeply nested one, a huge array, bytes
// that are not UTF-8) is a clear 4xx, never a deep recursion later (dump(), destruction) or an
// allocation the caller did not expect. Pure; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "greenlight/common/status.h"

namespace greenlight {

struct JsonLimits {
  size_t max_bytes = 64 * 1024;
  int max_depth = 8;
  size_t max_values = 4096;  // every value, at any depth
};

struct JsonBody {
  Status status = Status::Ok();
  int http_status = 200;  // 400 malformed or too deep, 413 too large
  nlohmann::json value;
};

JsonBody parseJsonBody(std::string_view body, const JsonLimits& limits = {});

}  // namespace greenlight
