// How the proxy reads and rewrites a request, shared by the server's async path, the tests and
// the libFuzzer target: raw-head checks Beast does not make, Beast's parser with our limits,
// and the header rewrite towards an upstream. Private to the proxy module (Beast types).
#pragma once

#include <boost/beast/http.hpp>
#include <optional>
#include <string>
#include <string_view>

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
  http::request<http::string_body> request;
};

// Parses one complete request from `bytes` exactly as the server does (for tests and fuzzing).
Parsed parseRequest(std::string_view bytes, const Limits& limits);

// A header that describes one connection only, never passed on: Connection, Keep-Alive,
// Proxy-Connection, TE, Trailer, Upgrade, Proxy-Authenticate, Proxy-Authorization.
bool isHopByHop(http::field name);

// A token of a Connection header that names a further hop-by-hop header (not close,
// keep-alive or upgrade, which name none).
bool namesAHeader(boost::beast::string_view connection_token);

// Removes hop-by-hop headers (and those the Connection header names).
template <class Fields>
void stripHopByHop(Fields& f);

// The protocol a request asks to switch to (`Upgrade: websocket` with `Connection: upgrade`).
std::optional<std::string> upgradeOf(const http::fields& f);

// Rewrites a request head for the upstream: hop-by-hop headers out (an Upgrade request keeps
// Upgrade and Connection: Upgrade), X-Forwarded-For appended, X-Forwarded-Proto and Via set,
// HTTP/1.1 keep-alive. A streamed body keeps its framing (Content-Length or chunked).
template <class Body>
void rewriteHeadForUpstream(http::request<Body>& req, const std::string& client_ip, bool tls);

// The head rewrite for a body read whole: de-chunked, sent with a Content-Length.
void prepareForUpstream(http::request<http::string_body>& req, const std::string& client_ip, bool tls = false);

// The 4xx status for a parse error.
http::status statusFor(boost::system::error_code ec, bool expectation_failed);

}  // namespace greenlight::proxy::rules
