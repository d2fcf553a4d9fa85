// Request ids: one per request the proxy forwards, sent to the upstream and back to the client
// in a configured header (proxy.request_id) and written in the access log, so one request can
// be followed from the client through the proxy to the release that served it.
#pragma once

#include <cstddef>
#include <string_view>

namespace greenlight::proxy {

inline constexpr size_t kRequestIdLength = 36;

// A new id in UUID version 4 text form ("9f1c…-4…-a…"), from a per-thread generator seeded by
// the operating system. Unique, not secret: it is meant to be seen.
void newRequestId(char (&out)[kRequestIdLength]);

// A header name the config may name for request ids: an HTTP token that is not a header the
// proxy manages itself (framing, hop-by-hop, forwarding, Host) or that carries credentials.
bool usableRequestIdHeader(std::string_view name);

}  // namespace greenlight::proxy
