// One blocking HTTP(S) request with libcurl, for the controller's checks (readiness, preview,
// Prometheus queries, gates). TLS verification stays on. Private to the controller module.
#pragma once

#include <string>
#include <vector>

#include "greenlight/common/time_source.h"

namespace greenlight::controller {

struct HttpCall {
  long status = 0;    // 0: no answer
  std::string error;  // why there was no answer
  std::string body;   // at most 1 MiB
};

// GET, or POST of `post_body` when given.
HttpCall httpCall(const std::string& url, Duration timeout, const std::vector<std::string>& headers = {},
                  const std::string* post_body = nullptr);
// Percent-encodes a query parameter.
std::string urlEncode(const std::string& s);

}  // namespace greenlight::controller
