// HTTP message heads as the proxy reads them (private to the proxy module): Beast's basic_parser
// — its tokenizer and its framing rules (Content-Length, chunked, keep-alive, bodiless statuses)
// — with the head's fields kept as views into the bytes parsed instead of copied into Beast's
// field list. A client's request body goes into a string; an upstream's response body into the
// caller's buffer, as buffer_body does.
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
#include <cstdint>
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

// A client's request. The body, if any, is appended to body().
class RequestParser : public boost::beast::http::basic_parser<true> {
 public:
  using string_view = boost::beast::string_view;

  boost::beast::http::verb method() const { return method_; }
  string_view methodString() const { return method_string_; }
  string_view target() const { return target_; }
  unsigned version() const { return version_; }  // 10 or 11
  const HeadFields& fields() const { return fields_; }
  std::string& body() { return body_; }
  const std::string& body() const { return body_; }

 private:
  using error_code = boost::beast::error_code;
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
  void on_field_impl(boost::beast::http::field name, string_view name_string, string_view value,
                     error_code& ec) override {
    fields_.push_back(HeadField{name, name_string, value});
    ec = {};
  }
  void on_header_impl(error_code& ec) override { ec = {}; }
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code& ec) override {
    if (length) body_.reserve(static_cast<size_t>(*length));  // within body_limit: Beast checked it
    ec = {};
  }
  size_t on_body_impl(string_view body, error_code& ec) override {
    body_.append(body.data(), body.size());
    ec = {};
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code& ec) override { ec = {}; }
  size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override { return on_body_impl(body, ec); }
  void on_finish_impl(error_code& ec) override { ec = {}; }

  boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
  string_view method_string_;
  string_view target_;
  unsigned version_ = 11;
  HeadFields fields_;
  std::string body_;
};

// How the proxy passes a request head on to an upstream.
struct RequestHeadOut {
  std::string_view client_ip;  // appended to X-Forwarded-For
  bool tls = false;            // X-Forwarded-Proto: https
  // A protocol switch asked for (the Upgrade header's value): Upgrade and Connection: Upgrade
  // are kept for it, as a switch is end to end. Empty: none.
  boost::beast::string_view upgrade;
};

// The protocol `fields` ask to switch to (`Upgrade: websocket` with `Connection: upgrade`), or
// empty.
boost::beast::string_view upgradeOf(const HeadFields& fields);

// Writes `p`'s head, whose body has been or will be read whole (Content-Length, not chunked),
// for the upstream into `out`: the request line at HTTP/1.1; the client's fields less the
// hop-by-hop ones (and those its Connection header names), Expect (answered here) and
// Transfer-Encoding; X-Forwarded-For with the client appended, X-Forwarded-Proto, Via; the
// Upgrade pair when asked for; Content-Length as Beast's prepare_payload sets it for a body of
// `body_size` bytes.
void writeRequestHead(const RequestParser& p, const RequestHeadOut& how, size_t body_size, std::string& out);

// An upstream's response. The body goes into the buffer given by setBodyBuffer.
class ResponseParser : public boost::beast::http::basic_parser<false> {
 public:
  using string_view = boost::beast::string_view;
  using Fields = HeadFields;

  unsigned status() const { return status_; }
  unsigned version() const { return version_; }  // 10 or 11
  string_view reason() const { return reason_; }
  const Fields& fields() const { return fields_; }

  // Where the next body bytes go: at most `size` bytes at `data`.
  void setBodyBuffer(char* data, size_t size) {
    body_ = data;
    room_ = size;
  }
  // What is left of that buffer.
  size_t bodyRoom() const { return room_; }

 private:
  using error_code = boost::beast::error_code;
  void on_request_impl(boost::beast::http::verb, string_view, string_view, int, error_code& ec) override {
    ec = boost::beast::http::error::bad_method;  // a response parser never sees a request line
  }
  void on_response_impl(int code, string_view reason, int version, error_code& ec) override {
    status_ = static_cast<unsigned>(code);
    reason_ = reason;
    version_ = version >= 11 ? 11 : 10;
    ec = {};
  }
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

  // As buffer_body's reader: copies what fits; need_buffer when some did not.
  size_t take(string_view body, error_code& ec);

  unsigned status_ = 0;
  unsigned version_ = 11;
  string_view reason_;
  Fields fields_;
  char* body_ = nullptr;
  size_t room_ = 0;
};

// How the proxy passes a response head on to its client.
struct ResponseHeadOut {
  unsigned version = 11;   // the client's HTTP version: 10 or 11
  bool keep = true;        // the client connection stays open after this response
  bool chunked = false;    // the body goes out chunked (Transfer-Encoding says so)
};

// Writes `p`'s head for the client into `out`: the status line at `how.version`, the upstream's
// fields less the hop-by-hop ones (and those its Connection header names), Transfer-Encoding as
// `how.chunked` says, and a Connection header when `how.keep` differs from the version's default.
void writeResponseHead(const ResponseParser& p, const ResponseHeadOut& how, std::string& out);

// Writes `p`'s head as it came, every field kept: a 101 answer opening a tunnel, whose Upgrade
// and Connection headers are end to end.
void writeResponseHeadAsIs(const ResponseParser& p, std::string& out);

}  // namespace greenlight::proxy
