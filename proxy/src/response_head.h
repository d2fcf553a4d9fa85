// An upstream response as the proxy reads it (private to the proxy module): Beast's basic_parser
// — its tokenizer and its framing rules (Content-Length, chunked, keep-alive, bodiless statuses)
// — with the head's fields kept as views into the bytes parsed instead of copied into Beast's
// field list, and the body put into the caller's buffer, as buffer_body does.
//
// Why: the proxy only filters a response's fields and passes them on. Building Beast's field
// list costs an allocation and a tree insert per field, then a search per hop-by-hop name and a
// rebuild of the Connection header; together with writing the list out again that was about a
// tenth of the proxy's CPU per keep-alive request.
//
// The views are valid until the parsed buffer is next written (read into, or compacted by a
// prepare): the head is written out with writeResponseHead straight after it is parsed. Beast
// parses a head only once all of it has arrived, in one contiguous buffer, so no view can point
// at bytes that moved between two reads.
// Not thread-safe: one exchange, on one event loop.
#pragma once

#include <boost/beast/http.hpp>
#include <boost/container/small_vector.hpp>
#include <cstdint>
#include <string>

namespace greenlight::proxy {

class ResponseParser : public boost::beast::http::basic_parser<false> {
 public:
  using string_view = boost::beast::string_view;
  struct Field {
    boost::beast::http::field name;  // unknown for a name Beast does not know
    string_view name_string;
    string_view value;
  };
  using Fields = boost::container::small_vector<Field, 24>;

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
    fields_.push_back(Field{name, name_string, value});
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
