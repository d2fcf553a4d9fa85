#include "request_rules.h"

#include <boost/beast/core.hpp>
#include <vector>

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

Parsed parseRequest(std::string_view bytes, const Limits& limits) {
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
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
  parser.eager(true);
  boost::system::error_code ec;
  size_t used = 0;
  while (!ec && used < bytes.size() && !parser.is_done()) {
    used += parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    if (ec == http::error::need_more) {
      ec = {};
      break;
    }
  }
  bool expectation_failed = false;
  if (!ec && parser.is_header_done()) {
    auto it = parser.get().find(http::field::expect);
    if (it != parser.get().end() && !boost::beast::iequals(it->value(), "100-continue")) {
      expectation_failed = true;
      ec = http::error::bad_field;
    }
  }
  if (!ec && !parser.is_done()) {
    if (parser.need_eof()) parser.put_eof(ec);
    if (!ec && !parser.is_done()) ec = http::error::partial_message;
  }
  if (ec) {
    out.error = statusFor(ec, expectation_failed);
    out.why = ec.message();
    return out;
  }
  out.request = parser.release();
  out.request.erase(http::field::expect);
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

template <class Fields>
void stripHopByHop(Fields& f) {
  // Headers the Connection header names are hop-by-hop too (beyond the usual close,
  // keep-alive and upgrade, which go anyway); rare, so looked for only when there are some.
  std::vector<std::string> named;
  for (auto it = f.find(http::field::connection); it != f.end() && it->name() == http::field::connection; ++it) {
    for (auto token : http::token_list(it->value())) {
      if (namesAHeader(token)) named.emplace_back(token);
    }
  }
  for (const auto& n : named) f.erase(n);
  // One pass over the fields, comparing the names Beast has already recognised.
  for (auto it = f.begin(); it != f.end();) {
    if (isHopByHop(it->name())) {
      it = f.erase(it);
    } else {
      ++it;
    }
  }
}

template void stripHopByHop(http::request<http::string_body>&);
template void stripHopByHop(http::response<http::string_body>&);

std::optional<std::string> upgradeOf(const http::fields& f) {
  auto up = f.find(http::field::upgrade);
  auto conn = f.find(http::field::connection);
  if (up == f.end() || conn == f.end() || up->value().empty()) return std::nullopt;
  if (!http::token_list(conn->value()).exists("upgrade")) return std::nullopt;
  return std::string(up->value());
}

template <class Body>
void rewriteHeadForUpstream(http::request<Body>& req, const std::string& client_ip, bool tls) {
  const auto upgrade = upgradeOf(req.base());
  stripHopByHop(req);
  std::string xff = client_ip;
  if (auto it = req.find("X-Forwarded-For"); it != req.end()) xff = std::string(it->value()) + ", " + client_ip;
  req.set("X-Forwarded-For", xff);
  req.set("X-Forwarded-Proto", tls ? "https" : "http");
  req.set(http::field::via, "1.1 greenlight");
  req.version(11);
  req.keep_alive(true);
  if (upgrade) {
    // A protocol switch (WebSocket) is end to end: the upstream must see it asked for.
    req.set(http::field::upgrade, *upgrade);
    req.set(http::field::connection, "Upgrade");
  }
}

template void stripHopByHop(http::request<http::buffer_body>&);
template void rewriteHeadForUpstream(http::request<http::buffer_body>&, const std::string&, bool);

void prepareForUpstream(http::request<http::string_body>& req, const std::string& client_ip, bool tls) {
  rewriteHeadForUpstream(req, client_ip, tls);
  // The body has been read and de-chunked: it goes on with a Content-Length only. Keeping any
  // Transfer-Encoding next to it would hand the upstream a smuggling shape.
  req.erase(http::field::transfer_encoding);
  req.prepare_payload();
}

}  // namespace greenlight::proxy::rules
