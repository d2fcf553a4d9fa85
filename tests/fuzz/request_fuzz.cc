// libFuzzer target: a request as the proxy reads and rewrites it. Checks that whatever is
// accepted is rewritten into one unambiguous request for the upstream, which Beast's own
// message parser reads back with the same body.
#include <cstdint>
#include <cstdlib>

#include "../../proxy/src/message_head.h"
#include "../../proxy/src/request_rules.h"
#include "greenlight/proxy/routing_table.h"

using namespace greenlight::proxy;
namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  RequestParser req;
  auto parsed = rules::parseRequest(bytes, {4096, 65536}, req);
  if (parsed.error != http::status::ok) return 0;
  if (const HeadField* cookie = findField(req.fields(), http::field::cookie)) {
    (void)previewFromCookie(std::string_view(cookie->value.data(), cookie->value.size()), "greenlight-color");
  }
  if (const HeadField* color = findField(req.fields(), "x-greenlight-color")) {
    (void)parseColor(std::string_view(color->value.data(), color->value.size()));
  }
  // As the server does for a body read whole (its length is known).
  const auto protocol = req.method() == http::verb::get ? upgradeOf(req.fields()) : boost::beast::string_view();
  std::string upstream;
  writeRequestHead(req, RequestHeadOut{"127.0.0.1", false, protocol, false, parsed.body.size(), "X-Request-Id", "0"}, upstream);
  upstream += parsed.body;
  // What goes upstream parses, with one framing only and no hop-by-hop header but the
  // Upgrade pair asked for, and carries the same body.
  http::request_parser<http::string_body> back;
  back.body_limit(65536);
  boost::system::error_code ec;
  const size_t used = back.put(boost::asio::buffer(upstream), ec);
  if (ec || !back.is_header_done()) std::abort();
  if (!back.is_done()) {
    back.put(boost::asio::buffer(upstream.data() + used, upstream.size() - used), ec);
    if (ec || !back.is_done()) std::abort();
  }
  const auto& out = back.get();
  if (out.body() != parsed.body) std::abort();
  if (out.find(http::field::transfer_encoding) != out.end()) std::abort();
  if (out.count(http::field::content_length) > 1) std::abort();
  if (out.find(http::field::te) != out.end()) std::abort();
  if (protocol.empty() && out.find(http::field::upgrade) != out.end()) std::abort();
  return 0;
}
