#include "request_rules.h"

#include <boost/beast/core.hpp>

namespace greenlight::proxy::rules {

HeadCheck checkRawHead(std::string_view seen, size_t max_header_bytes) {
  const size_t end = seen.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    return seen.size() > max_header_bytes ? HeadCheck::kTooLarge : HeadCheck::kIncomplete;
  }
  // Beast accepts obs-fold (a header continued on the next line, a smuggling vector) and
  // unfolds it silently; we refuse it on the raw bytes.
  const std::string_view head = seen.substr(0, end + 2);
  if (head.find("\r\n ") != std::string_view::npos || head.find("\r\n\t") != std::string_view::npos) {
    return HeadCheck::kObsFold;
  }
  return end + 4 > max_header_bytes ? HeadCheck::kTooLarge : HeadCheck::kComplete;
}

http::status statusFor(boost::system::error_code ec, bool expectation_failed) {
  if (expectation_failed) return http::status::expectation_failed;
  if (ec == http::error::header_limit) return http::status::request_header_fields_too_large;
  if (ec == http::error::body_limit) return http::status::payload_too_large;
  return http::status::bad_request;
}

Parsed parseRequest(std::string_view bytes, const Limits& limits, RequestParser& parser) {
  Parsed out;
  switch (checkRawHead(bytes, limits.max_header_bytes)) {
    case HeadCheck::kIncomplete:
      out.error = http::status::bad_request;
      out.why = "incomplete head";
      return out;
    case HeadCheck::kObsFold:
      out.error = http::status::bad_request;
      out.why = "obs-fold";
      return out;
    case HeadCheck::kTooLarge:
      out.error = http::status::request_header_fields_too_large;
      out.why = "head too large";
      return out;
    case HeadCheck::kComplete:
      break;
  }
  parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
  boost::system::error_code ec;
  size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec == http::error::need_more) ec = http::error::partial_message;  // the raw check saw the head's end
  bool expectation_failed = false;
  if (!ec) {
    const HeadField* expect = findField(parser.fields(), http::field::expect);
    if (expect && !boost::beast::iequals(expect->value, "100-continue")) {
      expectation_failed = true;
      ec = http::error::bad_field;
    }
  }
  // The body, a piece at a time as the server reads it (into a buffer of its own).
  char piece[4096];
  while (!ec && !parser.is_done() && used < bytes.size()) {
    parser.setBodyBuffer(piece, sizeof piece);
    const size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    out.body.append(piece, sizeof piece - parser.bodyRoom());
    if (ec == http::error::need_more || ec == http::error::need_buffer) ec = {};
    if (n == 0) break;  // the rest is an incomplete piece of framing
    used += n;
  }
  if (!ec && !parser.is_done()) ec = http::error::partial_message;
  if (ec) {
    out.error = statusFor(ec, expectation_failed);
    out.why = ec.message();
  }
  return out;
}

bool isHopByHop(http::field name) {
  switch (name) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::te:
    case http::field::trailer:
    case http::field::upgrade:
    case http::field::proxy_authenticate:
    case http::field::proxy_authorization:
      return true;
    default:
      return false;
  }
}

bool namesAHeader(boost::beast::string_view token) {
  return !boost::beast::iequals(token, "close") && !boost::beast::iequals(token, "keep-alive") &&
         !boost::beast::iequals(token, "upgrade");
}

}  // namespace greenlight::proxy::rules
