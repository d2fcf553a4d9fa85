// TLS for TimedSocket: OpenSSL reads and writes the descriptor through a BIO of ours, so that
// the loop's EdgePoller knows the socket's readiness as it does on the plain path (a short read
// or write, or EAGAIN, marks the direction blocked until its next edge; a blocked direction is
// not asked again), the writes carry MSG_NOSIGNAL (a peer gone never raises SIGPIPE) and
// MSG_MORE for a connection's last answer, and no system call goes through glibc's
// cancellation-point wrappers.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include "timed_socket.h"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <boost/asio/ssl/error.hpp>

namespace greenlight::proxy::timed_socket_detail {

namespace {

State& stateOf(BIO* b) { return *static_cast<State*>(BIO_get_data(b)); }

int bioRead(BIO* b, char* out, size_t size, size_t* done) {
  State& s = stateOf(b);
  BIO_clear_retry_flags(b);
  if (s.waiter.registered() && !s.waiter.ready(Direction::kRead)) {
    BIO_set_retry_read(b);
    return 0;
  }
  ssize_t n;
  do {
    n = ::syscall(SYS_recvfrom, s.raw, out, size, 0, nullptr, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    if (static_cast<size_t>(n) < size) s.waiter.markBlocked(Direction::kRead);  // the kernel had no more
    *done = static_cast<size_t>(n);
    return 1;
  }
  if (n == 0) {
    s.tls_eof = true;
    return 0;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    s.waiter.markBlocked(Direction::kRead);
    BIO_set_retry_read(b);
    return 0;
  }
  s.tls_errno = errno;
  return 0;
}

int bioWrite(BIO* b, const char* in, size_t size, size_t* done) {
  State& s = stateOf(b);
  BIO_clear_retry_flags(b);
  if (s.waiter.registered() && !s.waiter.ready(Direction::kWrite)) {
    BIO_set_retry_write(b);
    return 0;
  }
  const int flags = MSG_NOSIGNAL | (s.last_write ? MSG_MORE : 0);
  ssize_t n;
  do {
    n = ::syscall(SYS_sendto, s.raw, in, size, flags, nullptr, 0);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) {
    if (static_cast<size_t>(n) < size) s.waiter.markBlocked(Direction::kWrite);  // no more room
    *done = static_cast<size_t>(n);
    return 1;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    s.waiter.markBlocked(Direction::kWrite);
    BIO_set_retry_write(b);
    return 0;
  }
  s.tls_errno = errno;
  return 0;
}

long bioCtrl(BIO* b, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;  // nothing is held here
    case BIO_CTRL_EOF: return stateOf(b).tls_eof ? 1 : 0;
    default: return 0;
  }
}

BIO_METHOD* socketMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "greenlight socket");
    if (!m || !BIO_meth_set_read_ex(m, bioRead) || !BIO_meth_set_write_ex(m, bioWrite) || !BIO_meth_set_ctrl(m, bioCtrl)) {
      std::abort();  // out of memory at the first TLS connection
    }
    return m;
  }();
  return method;
}

boost::system::error_code sslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  return {static_cast<int>(e ? e : ERR_PACK(ERR_LIB_SSL, 0, ERR_R_INTERNAL_ERROR)), boost::asio::error::get_ssl_category()};
}

}  // namespace

boost::system::error_code startTls(State& s, SSL_CTX* ctx) {
  if (s.raw < 0 || s.ssl) return boost::asio::error::bad_descriptor;
  SSL* ssl = SSL_new(ctx);
  BIO* bio = ssl ? BIO_new(socketMethod()) : nullptr;
  if (!bio) {
    SSL_free(ssl);
    return sslError();
  }
  BIO_set_data(bio, &s);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl, bio, bio);  // the SSL owns it
  SSL_set_accept_state(ssl);
  // Record buffers only while a record is on its way (a waiting connection holds none); writes
  // of a record at a time, retried from wherever the caller's buffer now is; a peer that closes
  // without close_notify has ended its stream (HTTP messages carry their own lengths); whole
  // socket reads, not a record header and then its body.
  SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_set_read_ahead(ssl, 1);
  s.ssl = ssl;
  return {};
}

TlsAttempt tlsAttempt(State& s, TlsStep step, void* data, size_t size) {
  ERR_clear_error();  // the queue is the thread's: what another connection left must not show here
  s.tls_errno = 0;
  size_t n = 0;
  int r = 0;
  switch (step) {
    case TlsStep::kHandshake: r = SSL_do_handshake(s.ssl); break;
    case TlsStep::kRead: r = SSL_read_ex(s.ssl, data, size, &n); break;
    case TlsStep::kWrite: r = SSL_write_ex(s.ssl, data, size, &n); break;
  }
  TlsAttempt a;
  if (r == 1) {
    if (step == TlsStep::kHandshake) s.tls_ready = true;
    a.n = n;
    return a;
  }
  switch (SSL_get_error(s.ssl, r)) {
    case SSL_ERROR_WANT_READ:
      a.done = false;
      a.want = Direction::kRead;
      return a;
    case SSL_ERROR_WANT_WRITE:
      a.done = false;
      a.want = Direction::kWrite;
      return a;
    case SSL_ERROR_ZERO_RETURN:  // close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) the bare end
      a.ec = boost::asio::error::eof;
      return a;
    case SSL_ERROR_SYSCALL:
      s.tls_closed = true;
      ERR_clear_error();
      if (s.tls_errno != 0) {
        a.ec.assign(s.tls_errno, boost::system::system_category());
      } else {
        a.ec = boost::asio::error::eof;
      }
      return a;
    default:
      s.tls_closed = true;
      a.ec = sslError();
      return a;
  }
}

bool tlsReadable(State& s) {
  if (!SSL_has_pending(s.ssl)) return false;
  // Bytes read ahead, processed or not: they may be a whole record of data, part of one, or a
  // record with none (a TLS 1.3 key update). Peeking one byte processes what is there and
  // tells (reading from the socket at most once, as a read would).
  char byte;
  size_t n = 0;
  ERR_clear_error();
  const int r = SSL_peek_ex(s.ssl, &byte, 1, &n);
  const bool wait = r != 1 && SSL_get_error(s.ssl, r) == SSL_ERROR_WANT_READ;
  ERR_clear_error();
  return !wait;
}

void tlsCloseNotify(State& s) {
  if (!s.ssl || !s.tls_ready || s.tls_closed) return;
  s.tls_closed = true;
  ERR_clear_error();
  SSL_shutdown(s.ssl);  // writes the alert once; does not wait for the peer's
  ERR_clear_error();
}

void tlsFree(State& s) {
  SSL_free(s.ssl);
  s.ssl = nullptr;
}

}  // namespace greenlight::proxy::timed_socket_detail
