#include "greenlight/common/json_body.h"

namespace greenlight {
namespace {

struct LimitExceeded {
  std::string why;
};

}  // namespace

JsonBody parseJsonBody(std::string_view body, const JsonLimits& limits) {
  JsonBody out;
  if (body.size() > limits.max_bytes) {
    out.http_status = 413;
    out.status = InvalidArgument("body: larger than " + std::to_string(limits.max_bytes) + " bytes");
    return out;
  }
  size_t values = 0;
  // The parser is iterative; the callback sees every value with its depth before it is kept, so
  // a limit stops the parse before the document grows.
  const nlohmann::json::parser_callback_t check = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if (depth > limits.max_depth) throw LimitExceeded{"nested deeper than " + std::to_string(limits.max_depth) + " levels"};
    if (event == nlohmann::json::parse_event_t::value && ++values > limits.max_values) {
      throw LimitExceeded{"more than " + std::to_string(limits.max_values) + " values"};
    }
    return true;
  };
  try {
    out.value = nlohmann::json::parse(body.begin(), body.end(), check, true, false);
  } catch (const LimitExceeded& e) {
    out.http_status = 400;
    out.status = InvalidArgument("body: " + e.why);
  } catch (const nlohmann::json::parse_error& e) {
    // Only the offset: nlohmann's message quotes the bytes it read, which may be anything (not
    // UTF-8, a secret pasted by mistake) and must not travel into a reply or a log line.
    out.http_status = 400;
    out.status = InvalidArgument("body: not valid JSON (at byte " + std::to_string(e.byte) + ")");
  } catch (const nlohmann::json::exception& e) {
    out.http_status = 400;
    out.status = InvalidArgument("body: not valid JSON (error " + std::to_string(e.id) + ")");
  }
  if (!out.status.ok()) out.value = nullptr;
  return out;
}

}  // namespace greenlight
