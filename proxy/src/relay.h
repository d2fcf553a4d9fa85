// Streaming pieces of the data plane (private to the proxy module): reading a message head, and
// relaying a body from one connection to another through a fixed buffer — parsed by Beast as it
// passes (message_head.h), re-chunked with Beast's chunk encoder where the framing changes —
// and a byte tunnel for Upgrade (WebSocket) connections. Nothing here holds a whole body:
// memory per exchange is one buffer. Not thread-safe: one event loop per use.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <array>
#include <chrono>
#include <memory>
#include <string>

#include "coroutine.h"
#include "message_head.h"

namespace greenlight::proxy::relay {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

enum class Result { kDone, kSourceFailed, kDestinationFailed };

constexpr size_t kChunk = 16 << 10;

// Gives `p` what `buffer` holds (Beast parses; nothing is read from a socket) and returns how
// many bytes it took. need_more and need_buffer are not errors here: the caller reads more, or
// empties the body buffer.
template <class Parser>
size_t feed(Parser& p, beast::flat_buffer& buffer, boost::system::error_code& ec) {
  const size_t used = p.put(buffer.data(), ec);
  buffer.consume(used);
  if (ec == http::error::need_more || ec == http::error::need_buffer) ec = {};
  return used;
}

// Reads a message head into `p` from `src` (whatever `buffer` already holds first), with plain
// reads and Beast's parser fed synchronously: no composed operation per message. Errors as
// Beast's async_read_header gives them: end_of_stream if the peer closed before a byte,
// partial_message if it closed in the middle, the parser's error for a bad or too large head.
template <class Parser, class Src>
Task<void> readHeader(Src& src, beast::flat_buffer& buffer, Parser& p, boost::system::error_code& ec) {
  for (;;) {
    if (buffer.size() > 0) {
      feed(p, buffer, ec);
      if (ec || p.is_header_done()) co_return;
    }
    const size_t got = co_await src.async_read_some(buffer.prepare(8192), ecOut(ec));
    if (ec == asio::error::eof) ec = p.got_some() ? http::error::partial_message : http::error::end_of_stream;
    if (ec) co_return;
    buffer.commit(got);
  }
}

// Reads the rest of a message whose head `p` has read, and drops its body: the bytes go to
// `sink`, over and over. The connection can then carry another exchange (unless the body ended
// with the connection, need_eof).
template <class Parser, class Src>
Task<void> discardBody(Src& src, beast::flat_buffer& buffer, Parser& p, char* sink, size_t size, boost::system::error_code& ec) {
  while (!p.is_done()) {
    p.setBodyBuffer(sink, size);
    if (buffer.size() > 0) {
      const size_t used = feed(p, buffer, ec);
      if (ec) co_return;
      if (used > 0) continue;
    }
    const size_t got = co_await src.async_read_some(buffer.prepare(kChunk), ecOut(ec));
    if (ec == asio::error::eof) {
      ec = {};
      if (p.need_eof()) p.put_eof(ec); else ec = http::error::partial_message;
      co_return;
    }
    if (ec) co_return;
    buffer.commit(got);
  }
}

// A relay's failure, with its cause given to the caller when asked for.
inline Result failed(Result r, boost::system::error_code ec, boost::system::error_code* error) {
  if (error) *error = ec;
  return r;
}

// Moves a message with a known length (Content-Length, or no body) whose head `p` has read
// from `src`, to `dst`: `head` (written by writeRequestHead or writeResponseHead) goes out with
// the first piece of the body in one write when that piece has already arrived, then the body
// one buffer at a time. A small first piece is appended to `head` (the copy costs less than a
// scatter write). On failure `error` (if given) says why. `dst_ends`: the connection to `dst`
// closes after this message, so its last write is one (TimedSocket::lastWrite) whose tail
// leaves with the FIN.
constexpr size_t kCoalesce = 4096;
template <class Parser, class Src, class Dst>
Task<Result> relaySized(Src& src, beast::flat_buffer& src_buffer, Parser& p, Dst& dst, std::string& head,
                        char* buf, std::chrono::steady_clock::duration timeout,
                        boost::system::error_code* error = nullptr, bool dst_ends = false) {
  boost::system::error_code ec;
  bool head_sent = false;
  if (p.is_done() || src_buffer.size() == 0) {
    beast::get_lowest_layer(dst).expires_after(timeout);
    if (dst_ends && p.is_done()) beast::get_lowest_layer(dst).lastWrite();
    co_await asio::async_write(dst, asio::buffer(head), ecOut(ec));
    if (ec) co_return failed(Result::kDestinationFailed, ec, error);
    head_sent = true;
  }
  while (!p.is_done()) {
    if (src_buffer.size() == 0) {
      beast::get_lowest_layer(src).expires_after(timeout);
      const size_t got = co_await src.async_read_some(src_buffer.prepare(kChunk), ecOut(ec));
      if (ec) co_return failed(Result::kSourceFailed, ec, error);  // closed before the announced length: cut short
      src_buffer.commit(got);
    }
    p.setBodyBuffer(buf, kChunk);
    feed(p, src_buffer, ec);
    if (ec) co_return failed(Result::kSourceFailed, ec, error);
    const size_t n = kChunk - p.bodyRoom();
    if (n == 0 && head_sent) continue;
    beast::get_lowest_layer(dst).expires_after(timeout);
    if (dst_ends && p.is_done()) beast::get_lowest_layer(dst).lastWrite();
    if (!head_sent && n <= kCoalesce) {  // one buffer: send, not sendmsg with a two-entry vector
      head.append(buf, n);
      co_await asio::async_write(dst, asio::buffer(head), ecOut(ec));
    } else {
      const std::array<asio::const_buffer, 2> out{head_sent ? asio::const_buffer() : asio::buffer(head), asio::buffer(buf, n)};
      co_await asio::async_write(dst, out, ecOut(ec));
    }
    head_sent = true;
    if (ec) co_return failed(Result::kDestinationFailed, ec, error);
  }
  co_return Result::kDone;
}

// Moves a body framed by chunks, or (a response's) ended by the sender's close, whose head `p`
// has read from `src`, to `dst`: `head` first, then each piece as it arrives — in chunks of its
// own when `chunked` (Beast's chunk encoder; the sender's chunk boundaries and trailers are not
// kept), else as it is (an HTTP/1.0 client reads to the close). On failure `error` (if given)
// says why.
template <class Parser, class Src, class Dst>
Task<Result> relayUnsized(Src& src, beast::flat_buffer& src_buffer, Parser& p, Dst& dst,
                          const std::string& head, char* buf, bool chunked,
                          std::chrono::steady_clock::duration timeout,
                          boost::system::error_code* error = nullptr) {
  boost::system::error_code ec;
  beast::get_lowest_layer(dst).expires_after(timeout);
  co_await asio::async_write(dst, asio::buffer(head), ecOut(ec));
  if (ec) co_return failed(Result::kDestinationFailed, ec, error);
  bool starved = src_buffer.size() == 0;  // the parser needs bytes that have not arrived
  while (!p.is_done()) {
    if (starved) {
      beast::get_lowest_layer(src).expires_after(timeout);
      const size_t got = co_await src.async_read_some(src_buffer.prepare(kChunk), ecOut(ec));
      if (ec == asio::error::eof && p.need_eof()) {
        p.put_eof(ec);  // the close is the body's end
        if (ec) co_return failed(Result::kSourceFailed, ec, error);
        break;
      }
      if (ec) co_return failed(Result::kSourceFailed, ec, error);  // closed mid-chunk, or failed
      src_buffer.commit(got);
    }
    p.setBodyBuffer(buf, kChunk);
    const size_t used = feed(p, src_buffer, ec);
    if (ec) co_return failed(Result::kSourceFailed, ec, error);  // a bad chunk
    const size_t n = kChunk - p.bodyRoom();
    starved = used == 0 || src_buffer.size() == 0;
    if (n == 0) continue;  // only framing was parsed
    beast::get_lowest_layer(dst).expires_after(timeout);
    if (chunked) {
      co_await asio::async_write(dst, http::make_chunk(asio::buffer(buf, n)), ecOut(ec));
    } else {
      co_await asio::async_write(dst, asio::buffer(buf, n), ecOut(ec));
    }
    if (ec) co_return failed(Result::kDestinationFailed, ec, error);
  }
  if (chunked) {
    beast::get_lowest_layer(dst).expires_after(timeout);
    co_await asio::async_write(dst, http::make_chunk_last(), ecOut(ec));
    if (ec) co_return failed(Result::kDestinationFailed, ec, error);
  }
  co_return Result::kDone;
}

// Copies bytes from `from` to `to` until either fails or closes; `pending` (bytes already read
// past a message head) goes first.
template <class From, class To>
Task<void> pump(From& from, To& to, beast::flat_buffer& pending) {
  boost::system::error_code ec;
  if (pending.size() > 0) {
    co_await asio::async_write(to, pending.data(), ecOut(ec));
    pending.consume(pending.size());
    if (ec) co_return;
  }
  auto buf = std::make_unique<char[]>(kChunk);
  for (;;) {
    beast::get_lowest_layer(from).expires_never();
    const size_t n = co_await from.async_read_some(asio::buffer(buf.get(), kChunk), ecOut(ec));
    if (ec) co_return;
    beast::get_lowest_layer(to).expires_never();
    co_await asio::async_write(to, asio::buffer(buf.get(), n), ecOut(ec));
    if (ec) co_return;
  }
}

// Runs both directions of a tunnel; returns when both have ended. When one direction ends the
// other is cancelled (a closed WebSocket has already said goodbye inside the stream).
template <class A, class B>
Task<void> tunnel(A& a, beast::flat_buffer& a_pending, B& b, beast::flat_buffer& b_pending) {
  auto ex = co_await asio::this_coro::executor;
  auto other_done = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
  auto finished = std::make_shared<bool>(false);
  auto* a_ptr = &a;
  asio::co_spawn(ex, pump(b, a, b_pending), [other_done, finished, a_ptr](std::exception_ptr) {
    *finished = true;
    beast::get_lowest_layer(*a_ptr).cancel();  // ends the a -> b direction too
    other_done->cancel();
  });
  co_await pump(a, b, a_pending);
  beast::get_lowest_layer(b).cancel();
  boost::system::error_code ec;
  beast::get_lowest_layer(b).shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  if (!*finished) co_await other_done->async_wait(ecOut(ec));
}

}  // namespace greenlight::proxy::relay
