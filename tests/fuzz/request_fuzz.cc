// libFuzzer target: a request as the proxy reads and rewrites it. Checks that whatever is
// accepted is rewritten into an unambiguous request for the upstream.
#include <cstdint>
#include <cstdlib>
#include <sstream>

#include "../../proxy/src/request_rules.h"
#include "greenlight/proxy/routing_table.h"

using namespace greenlight::proxy;
namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = rules::parseRequest(bytes, {4096, 65536});
  if (parsed.error != http::status::ok) return 0;
  auto& req = parsed.request;
  if (auto it = req.find(http::field::cookie); it != req.end()) {
    (void)previewFromCookie(std::string_view(it->value().data(), it->value().size()), "greenlight-color");
  }
  if (auto it = req.find("x-greenlight-color"); it != req.end()) {
    (void)parseColor(std::string_view(it->value().data(), it->value().size()));
  }
  rules::prepareForUpstream(req, "127.0.0.1");
  // What goes upstream: one framing only, and no hop-by-hop header.
  if (req.find(http::field::transfer_encoding) != req.end()) std::abort();
  if (req.count(http::field::content_length) > 1) std::abort();
  if (req.find(http::field::upgrade) != req.end() || req.find(http::field::te) != req.end()) std::abort();
  std::ostringstream out;
  out << req;
  return 0;
}
