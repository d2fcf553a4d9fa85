// How the proxy reads a request, shared by the server's async path, the tests and the libFuzzer
// target: raw-head checks Beast does not make, Beast's parser with our limits, and which
// headers are hop-by-hop. Private to the proxy module (Beast types).
#pragma once

#include <boost/beast/http.hpp>
#include <string>
#include <string_view>

#include "message_head.h"

namespace greenlight::proxy::rules {

namespace http = boost::beast::http;

enum class HeadCheck { kIncomplete, kComplete, kObsFold, kTooLarge };

// Looks at the bytes buffered so far for one request head.
HeadCheck checkRawHead(std::string_view buffered, size_t max_header_bytes);

struct Limits {
  size_t max_header_bytes = 16 << 10;
  size_t max_body_bytes = 8 << 20;
};

struct Parsed {
  http::status error = http::status::ok;  // ok, or the 4xx to answer
  std::string why;
  std::string body;  // the request's body, de-chunked
};

// Parses one complete request from `bytes` into `into` exactly as the server does (for tests
// and fuzzing): the raw-head checks, RequestParser with these limits, the Expect rule. The
// head's fields are views into `bytes`.
Parsed parseRequest(std::string_view bytes, const Limits& limits, RequestParser& into);

// A header that describes one connection only, never passed on: Connection, Keep-Alive,
// Proxy-Connection, TE, Trailer, Upgrade, Proxy-Authenticate, Proxy-Authorization.
bool isHopByHop(http::field name);

// A token of a Connection header that names a further hop-by-hop header (not close,
// keep-alive or upgrade, which name none).
bool namesAHeader(boost::beast::string_view connection_token);

// The 4xx status for a parse error.
http::status statusFor(boost::system::error_code ec, bool expectation_failed);

}  // namespace greenlight::proxy::rules
