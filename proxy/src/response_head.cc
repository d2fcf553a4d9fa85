#include "response_head.h"

#include <boost/beast/core/string.hpp>
#include <cstring>

#include "request_rules.h"

namespace greenlight::proxy {

namespace http = boost::beast::http;
using boost::beast::string_view;

size_t ResponseParser::take(string_view body, error_code& ec) {
  if (body_ == nullptr) {
    ec = http::error::need_buffer;
    return 0;
  }
  const size_t n = std::min(room_, body.size());
  std::memcpy(body_, body.data(), n);
  body_ += n;
  room_ -= n;
  ec = n == body.size() ? error_code{} : error_code(http::error::need_buffer);
  return n;
}

namespace {

void append(std::string& out, string_view s) { out.append(s.data(), s.size()); }

void appendStatusLine(const ResponseParser& p, unsigned version, std::string& out) {
  out.append(version >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ");
  char digits[8];
  const int n = std::snprintf(digits, sizeof digits, "%u ", p.status());
  out.append(digits, static_cast<size_t>(n));
  append(out, p.reason().empty() ? http::obsolete_reason(http::int_to_status(p.status())) : p.reason());
  out.append("\r\n");
}

void appendField(std::string& out, string_view name, string_view value) {
  append(out, name);
  out.append(": ");
  append(out, value);
  out.append("\r\n");
}

// The transfer codings of `te` other than chunked, as a list ("gzip" of "gzip, chunked").
std::string withoutChunked(string_view te) {
  std::string rest;
  for (auto token : http::token_list(te)) {
    if (boost::beast::iequals(token, "chunked")) continue;
    if (!rest.empty()) rest.append(", ");
    append(rest, token);
  }
  return rest;
}

}  // namespace

void writeResponseHead(const ResponseParser& p, const ResponseHeadOut& how, std::string& out) {
  out.clear();
  appendStatusLine(p, how.version, out);
  // Headers the Connection header names are hop-by-hop too; rare, so looked at only when there.
  boost::container::small_vector<string_view, 4> named;
  string_view te;
  for (const auto& f : p.fields()) {
    if (f.name == http::field::connection) {
      for (auto token : http::token_list(f.value)) {
        if (rules::namesAHeader(token)) named.push_back(token);
      }
    }
  }
  for (const auto& f : p.fields()) {
    if (rules::isHopByHop(f.name)) continue;
    if (f.name == http::field::transfer_encoding) {
      te = f.value;  // written below, as the body goes out
      continue;
    }
    bool hop = false;
    for (const auto& n : named) hop = hop || boost::beast::iequals(n, f.name_string);
    if (!hop) appendField(out, f.name_string, f.value);
  }
  // The codings other than chunked stay (the body still carries them); chunked is the framing,
  // which is ours towards the client.
  std::string codings = te.empty() ? std::string() : withoutChunked(te);
  if (how.chunked) codings.append(codings.empty() ? "chunked" : ", chunked");
  if (!codings.empty()) appendField(out, "Transfer-Encoding", codings);
  if (how.version >= 11 && !how.keep) out.append("Connection: close\r\n");
  if (how.version < 11 && how.keep) out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
}

void writeResponseHeadAsIs(const ResponseParser& p, std::string& out) {
  out.clear();
  appendStatusLine(p, p.version(), out);
  for (const auto& f : p.fields()) appendField(out, f.name_string, f.value);
  out.append("\r\n");
}

}  // namespace greenlight::proxy
