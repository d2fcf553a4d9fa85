#include "message_head.h"

#include <boost/beast/core/string.hpp>
#include <charconv>
#include <cstring>

#include "request_rules.h"

namespace greenlight::proxy {

namespace http = boost::beast::http;
using boost::beast::string_view;

namespace {

// Appends by length: no strlen per literal, which showed in profiles at a few calls a header.
void append(std::string& out, string_view s) { out.append(s.data(), s.size()); }

void appendStatusLine(const ResponseParser& p, unsigned version, std::string& out) {
  append(out, version >= 11 ? string_view("HTTP/1.1 ") : string_view("HTTP/1.0 "));
  char digits[4];  // Beast accepts three-digit codes only
  const auto end = std::to_chars(digits, digits + sizeof digits, p.status()).ptr;
  out.append(digits, static_cast<size_t>(end - digits)).push_back(' ');
  append(out, p.reason().empty() ? http::obsolete_reason(http::int_to_status(p.status())) : p.reason());
  append(out, "\r\n");
}

void appendField(std::string& out, string_view name, string_view value) {
  append(out, name);
  append(out, ": ");
  append(out, value);
  append(out, "\r\n");
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

// Transfer-Encoding for a body passed on: the sender's codings other than chunked (the body still
// carries them), then chunked when the body goes out in our chunks. Nothing when that is empty.
void appendCodings(std::string& out, string_view te, bool chunked) {
  std::string codings = te.empty() ? std::string() : withoutChunked(te);
  if (chunked) codings.append(codings.empty() ? "chunked" : ", chunked");
  if (!codings.empty()) appendField(out, "Transfer-Encoding", codings);
}

// The tokens of the Connection headers that name further hop-by-hop headers.
boost::container::small_vector<string_view, 4> namedByConnection(const HeadFields& fields) {
  boost::container::small_vector<string_view, 4> named;
  for (const auto& f : fields) {
    if (f.name != http::field::connection) continue;
    for (auto token : http::token_list(f.value)) {
      if (rules::namesAHeader(token)) named.push_back(token);
    }
  }
  return named;
}

// Hop-by-hop: by its name, or named by the Connection header.
bool dropped(const HeadField& f, const boost::container::small_vector<string_view, 4>& named) {
  if (rules::isHopByHop(f.name)) return true;
  for (const auto& n : named) {
    if (boost::beast::iequals(n, f.name_string)) return true;
  }
  return false;
}

}  // namespace

const HeadField* findField(const HeadFields& fields, http::field name) {
  for (const auto& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const HeadField* findField(const HeadFields& fields, string_view name) {
  for (const auto& f : fields) {
    if (boost::beast::iequals(f.name_string, name)) return &f;
  }
  return nullptr;
}

string_view upgradeOf(const HeadFields& fields) {
  const HeadField* up = findField(fields, http::field::upgrade);
  const HeadField* conn = findField(fields, http::field::connection);
  if (!up || !conn || up->value.empty() || !http::token_list(conn->value).exists("upgrade")) return {};
  return up->value;
}

void writeRequestHead(const RequestParser& p, const RequestHeadOut& how, std::string& out) {
  out.clear();
  append(out, p.methodString());
  out.push_back(' ');
  append(out, p.target());
  append(out, " HTTP/1.1\r\n");
  const auto named = namedByConnection(p.fields());
  boost::container::small_vector<string_view, 2> forwarded_for;  // every X-Forwarded-For, in order
  string_view te;
  for (const auto& f : p.fields()) {
    if (dropped(f, named)) continue;
    switch (f.name) {
      case http::field::transfer_encoding:  // the framing is written below
        te = f.value;
        continue;
      case http::field::expect:          // answered here
      case http::field::content_length:  // written below
      case http::field::via:             // ours
        continue;
      default:
        break;
    }
    if (boost::beast::iequals(f.name_string, "X-Forwarded-For")) {
      forwarded_for.push_back(f.value);
      continue;
    }
    if (boost::beast::iequals(f.name_string, "X-Forwarded-Proto")) continue;
    if (!how.id.empty() && boost::beast::iequals(f.name_string, how.id_header)) continue;  // ours replaces it
    appendField(out, f.name_string, f.value);
  }
  if (!how.id.empty()) appendField(out, how.id_header, how.id);
  append(out, "X-Forwarded-For: ");
  for (const auto& hop : forwarded_for) {
    append(out, hop);
    append(out, ", ");
  }
  out.append(how.client_ip.data(), how.client_ip.size());
  append(out, how.tls ? string_view("\r\nX-Forwarded-Proto: https\r\n") : string_view("\r\nX-Forwarded-Proto: http\r\n"));
  append(out, "Via: 1.1 greenlight\r\n");
  if (!how.upgrade.empty()) {
    appendField(out, "Upgrade", how.upgrade);
    append(out, "Connection: Upgrade\r\n");
  }
  if (how.chunked) {
    appendCodings(out, te, true);
  } else if (const http::verb m = p.method();
             how.length > 0 || m == http::verb::options || m == http::verb::put || m == http::verb::post) {
    // As Beast's prepare_payload: a length when there is a body, or for methods that expect one.
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, how.length).ptr;
    appendField(out, "Content-Length", string_view(digits, static_cast<size_t>(end - digits)));
  }
  append(out, "\r\n");
}

void writeResponseHead(const ResponseParser& p, const ResponseHeadOut& how, std::string& out) {
  out.clear();
  appendStatusLine(p, how.version, out);
  const auto named = namedByConnection(p.fields());
  string_view te;
  for (const auto& f : p.fields()) {
    if (dropped(f, named)) continue;
    if (f.name == http::field::transfer_encoding) {
      te = f.value;  // written below, as the body goes out
      continue;
    }
    if (!how.id.empty() && boost::beast::iequals(f.name_string, how.id_header)) continue;  // ours replaces it
    appendField(out, f.name_string, f.value);
  }
  if (!how.id.empty()) appendField(out, how.id_header, how.id);
  appendCodings(out, te, how.chunked);
  if (how.version >= 11 && !how.keep) append(out, "Connection: close\r\n");
  if (how.version < 11 && how.keep) append(out, "Connection: keep-alive\r\n");
  append(out, "\r\n");
}

void writeResponseHeadAsIs(const ResponseParser& p, std::string& out) {
  out.clear();
  appendStatusLine(p, p.version(), out);
  for (const auto& f : p.fields()) appendField(out, f.name_string, f.value);
  append(out, "\r\n");
}

}  // namespace greenlight::proxy
