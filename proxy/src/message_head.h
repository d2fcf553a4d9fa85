// HTTP message heads as the proxy reads them (private to the proxy module): Beast's basic_parser
// — its tokenizer and its framing rules (Content-Length, chunked, keep-alive, bodiless statuses)
// — with the head's fields kept as views into the bytes parsed instead of copied into Beast's
// field list, and the body put into the caller's buffer, as buffer_body does.
//
// Why: the proxy filters a head's fields, adds a few and passes them on. Building Beast's field
// list costs an allocation and a tree insert per field, then a search per hop-by-hop name and a
// rebuild of the Connection header, then writing the list out again: for the response alone
// about a tenth of the proxy's CPU per keep-alive request.
//
// The views are valid until the parsed buffer is next written (read into, or compacted by a
// prepare): a head is written out (writeRequestHead, writeResponseHead) before the buffer it came
// from is read into again. Beast parses a head only once all of it has arrived, in one
// contiguous buffer, so no view can point at bytes that moved between two reads.
// Not thread-safe: one exchange, on one event loop.
#pragma once

#include <boost/beast/http.hpp>
#include <boost/container/small_vector.hpp>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace greenlight::proxy {

// A head's fields in the order they came, as views into the parsed bytes.
struct HeadField {
  boost::beast::http::field name;  // unknown for a name Beast does not know
  boost::beast::string_view name_string;
  boost::beast::string_view value;
};
using HeadFields = boost::container::small_vector<HeadField, 24>;

// The first field called `name`, or null.
const HeadField* findField(const HeadFields& fields, boost::beast::http::field name);
const HeadField* findField(const HeadFields& fields, boost::beast::string_view name);

// A message head as parsed, and the body put into the caller's buffer as buffer_body does.
template <bool isRequest>
class HeadParser : public boost::beast::http::basic_parser<isRequest> {
 public:
  using string_view = boost::beast::string_view;

  unsigned version() const { return version_; }  // 10 or 11
  const HeadFields& fields() const { return fields_; }

  // Where the next body bytes go: at most `size` bytes at `data`.
  void setBodyBuffer(char* data, size_t size) {
    body_ = data;
    room_ = size;
  }
  // What is left of that buffer.
  size_t bodyRoom() const { return room_; }

 protected:
  using error_code = boost::beast::error_code;
  unsigned version_ = 11;

 private:
  void on_field_impl(boost::beast::http::field name, string_view name_string, string_view value,
                     error_code& ec) override {
    fields_.push_back(HeadField{name, name_string, value});
    ec = {};
  }
  void on_header_impl(error_code& ec) override { ec = {}; }
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code& ec) override { ec = {}; }
  size_t on_body_impl(string_view body, error_code& ec) override { return take(body, ec); }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code& ec) override { ec = {}; }
  size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override { return take(body, ec); }
  void on_finish_impl(error_code& ec) override { ec = {}; }

  // As buffer_body's reader: copies what fits; need_buffer when some did not (or no buffer).
  size_t take(string_view body, error_code& ec) {
    const size_t n = std::min(room_, body.size());
    if (n > 0) std::memcpy(body_, body.data(), n);
    body_ += n;
    room_ -= n;
    ec = n == body.size() ? error_code{} : error_code(boost::beast::http::error::need_buffer);
    return n;
  }

  HeadFields fields_;
  char* body_ = nullptr;
  size_t room_ = 0;
};

// A client's request.
class RequestParser : public HeadParser<true> {
 public:
  boost::beast::http::verb method() const { return method_; }
  string_view methodString() const { return method_string_; }
  string_view target() const { return target_; }

 private:
  void on_request_impl(boost::beast::http::verb method, string_view method_string, string_view target, int version,
                       error_code& ec) override {
    method_ = method;
    method_string_ = method_string;
    target_ = target;
    version_ = version >= 11 ? 11 : 10;
    ec = {};
  }
  void on_response_impl(int, string_view, int, error_code& ec) override {
    ec = boost::beast::http::error::bad_version;  // a request parser never sees a status line
  }

  boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
  string_view method_string_;
  string_view target_;
};

// How the proxy passes a request head on to an upstream.
struct RequestHeadOut {
  std::string_view client_ip;  // appended to X-Forwarded-For
  bool tls = false;            // X-Forwarded-Proto: https
  // A protocol switch asked for (the Upgrade header's value): Upgrade and Connection: Upgrade
  // are kept for it, as a switch is end to end. Empty: none.
  boost::beast::string_view upgrade;
  // The body's framing towards the upstream: chunked (a chunked body streamed as it arrives),
  // else a Content-Length of `length` bytes, written as Beast's prepare_payload would (also 0
  // for methods that expect a body).
  bool chunked = false;
  std::uint64_t length = 0;
  // The request's id (proxy.request_id), in place of any field of that name the client sent.
  // Empty: none.
  boost::beast::string_view id_header;
  boost::beast::string_view id;
};

// The protocol `fields` ask to switch to (`Upgrade: websocket` with `Connection: upgrade`), or
// empty.
boost::beast::string_view upgradeOf(const HeadFields& fields);

// Writes `p`'s head for the upstream into `out`: the request line at HTTP/1.1; the client's
// fields less the hop-by-hop ones (and those its Connection header names), Expect (answered
// here), Transfer-Encoding and Content-Length (`how` gives the framing); X-Forwarded-For (every
// one the client sent, joined, then the client), X-Forwarded-Proto, Via; the Upgrade pair when
// asked for.
void writeRequestHead(const RequestParser& p, const RequestHeadOut& how, std::string& out);

// An upstream's response.
class ResponseParser : public HeadParser<false> {
 public:
  unsigned status() const { return status_; }
  string_view reason() const { return reason_; }

 private:
  void on_request_impl(boost::beast::http::verb, string_view, string_view, int, error_code& ec) override {
    ec = boost::beast::http::error::bad_method;  // a response parser never sees a request line
  }
  void on_response_impl(int code, string_view reason, int version, error_code& ec) override {
    status_ = static_cast<unsigned>(code);
    reason_ = reason;
    version_ = version >= 11 ? 11 : 10;
    ec = {};
  }

  unsigned status_ = 0;
  string_view reason_;
};

// How the proxy passes a response head on to its client.
struct ResponseHeadOut {
  unsigned version = 11;   // the client's HTTP version: 10 or 11
  bool keep = true;        // the client connection stays open after this response
  bool chunked = false;    // the body goes out chunked (Transfer-Encoding says so)
  // The request's id, in place of any field of that name the upstream sent. Empty: none.
  boost::beast::string_view id_header;
  boost::beast::string_view id;
};

// Writes `p`'s head for the client into `out`: the status line at `how.version`, the upstream's
// fields less the hop-by-hop ones (and those its Connection header names), Transfer-Encoding as
// `how.chunked` says, and a Connection header when `how.keep` differs from the version's default.
void writeResponseHead(const ResponseParser& p, const ResponseHeadOut& how, std::string& out);

// Writes `p`'s head as it came, every field kept: a 101 answer opening a tunnel, whose Upgrade
// and Connection headers are end to end.
void writeResponseHeadAsIs(const ResponseParser& p, std::string& out);

}  // namespace greenlight::proxy
