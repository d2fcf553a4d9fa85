// RequestParser and ResponseParser, and the heads the proxy writes from them for the upstream and
// the client, fed bytes directly
// (the relaying over sockets is covered by the integration and streaming tests).
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

#include "../../proxy/src/message_head.h"
#include "../../proxy/src/request_id.h"

namespace greenlight::proxy {
namespace {

namespace http = boost::beast::http;

// Parses `bytes` (a whole head, maybe followed by body bytes) and returns how many
// bytes the parser took. The views point into `bytes`: the caller keeps it alive.
template <class Parser>
size_t parse(Parser& p, const std::string& bytes) {
  boost::beast::error_code ec;
  const size_t used = p.put(boost::asio::buffer(bytes), ec);
  EXPECT_TRUE(!ec || ec == http::error::need_more || ec == http::error::need_buffer) << ec.message();
  EXPECT_TRUE(p.is_header_done());
  return used;
}

std::string head(const ResponseParser& p, unsigned version, bool keep, bool chunked) {
  std::string out;
  writeResponseHead(p, ResponseHeadOut{version, keep, chunked, {}, {}}, out);
  return out;
}

TEST(ResponseHead, HopByHopHeadersAndThoseConnectionNamesAreDroppedTheRestKeptInOrder) {
  const std::string in =
      "HTTP/1.1 200 OK\r\nServer: up\r\nConnection: keep-alive, X-Upstream-Hop\r\nKeep-Alive: timeout=5\r\n"
      "X-Upstream-Hop: 1\r\nContent-Length: 2\r\nTE: trailers\r\nProxy-Authenticate: Basic\r\nX-Kept: yes\r\n\r\nok";
  ResponseParser p;
  parse(p, in);
  EXPECT_EQ(p.status(), 200u);
  EXPECT_TRUE(p.keep_alive());
  EXPECT_EQ(head(p, 11, true, false), "HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 2\r\nX-Kept: yes\r\n\r\n");
}

TEST(ResponseHead, ConnectionSaysWhatTheClientsVersionDoesNotAssume) {
  ResponseParser p;
  const std::string bytes = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  parse(p, bytes);
  EXPECT_EQ(head(p, 11, false, false), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head(p, 10, true, false), "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(head(p, 10, false, false), "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
}

TEST(ResponseHead, ChunkedFramingIsOursOtherCodingsStay) {
  ResponseParser p;
  const std::string gzip_chunked = "HTTP/1.1 200 OK\r\nContent-Encoding: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
  parse(p, gzip_chunked);
  EXPECT_TRUE(p.chunked());
  // Towards an HTTP/1.1 client the body is re-chunked; towards HTTP/1.0 it goes as it is.
  EXPECT_EQ(head(p, 11, true, true), "HTTP/1.1 200 OK\r\nContent-Encoding: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
  EXPECT_EQ(head(p, 10, false, false), "HTTP/1.0 200 OK\r\nContent-Encoding: x\r\nTransfer-Encoding: gzip\r\n\r\n");
  ResponseParser plain;
  const std::string chunked_only = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  parse(plain, chunked_only);
  EXPECT_EQ(head(plain, 10, false, false), "HTTP/1.0 200 OK\r\n\r\n");
}

TEST(ResponseHead, ABodyEndedByTheCloseGoesOutChunked) {
  ResponseParser p;
  const std::string bytes = "HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\n";
  parse(p, bytes);
  EXPECT_TRUE(p.need_eof());
  EXPECT_FALSE(p.keep_alive());
  EXPECT_EQ(head(p, 11, true, true), "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
}

TEST(ResponseHead, AMissingReasonGetsTheStandardOne) {
  ResponseParser p;
  const std::string bytes = "HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n";
  parse(p, bytes);
  EXPECT_EQ(head(p, 11, true, false), "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
}

TEST(ResponseHead, AnUpgradeAnswerIsWrittenAsItCame) {
  ResponseParser p;
  const std::string bytes = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: k\r\n\r\n";
  parse(p, bytes);
  std::string out;
  writeResponseHeadAsIs(p, out);
  EXPECT_EQ(out, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: k\r\n\r\n");
}

TEST(ResponseParserBody, GoesIntoTheCallersBufferAsMuchAsFits) {
  const std::string in = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
  ResponseParser p;
  const size_t head_bytes = parse(p, in);
  char buf[4];
  p.setBodyBuffer(buf, sizeof buf);
  boost::beast::error_code ec;
  const size_t used = p.put(boost::asio::buffer(in.data() + head_bytes, in.size() - head_bytes), ec);
  EXPECT_EQ(ec, http::error::need_buffer);
  EXPECT_EQ(used, 4u);
  EXPECT_EQ(p.bodyRoom(), 0u);
  EXPECT_EQ(std::string(buf, 4), "0123");
  EXPECT_FALSE(p.is_done());
}

TEST(ResponseParserBody, ChunksArriveDechunked) {
  const std::string in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  ResponseParser p;
  size_t at = parse(p, in);
  char buf[64];
  p.setBodyBuffer(buf, sizeof buf);
  boost::beast::error_code ec;
  while (!p.is_done() && at < in.size()) {
    const size_t used = p.put(boost::asio::buffer(in.data() + at, in.size() - at), ec);
    ASSERT_TRUE(!ec || ec == http::error::need_more) << ec.message();
    ASSERT_GT(used, 0u);
    at += used;
  }
  EXPECT_TRUE(p.is_done());
  EXPECT_EQ(std::string(buf, sizeof buf - p.bodyRoom()), "abcde");
}


TEST(RequestHead, ForwardingHeadersAddedHopByHopAndFramingReplaced) {
  const std::string in =
      "POST /v1/cars?x=1 HTTP/1.0\r\nHost: v\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nTE: trailers\r\n"
      "X-Forwarded-For: 10.1.2.3\r\nX-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Proto: https\r\nVia: 1.0 other\r\n"
      "Expect: 100-continue\r\nContent-Length: 2\r\nAuthorization: Bearer t\r\n\r\nhi";
  RequestParser p;
  parse(p, in);
  std::string out;
  writeRequestHead(p, RequestHeadOut{"127.0.0.1", false, {}, false, 2, {}, {}}, out);
  EXPECT_EQ(out,
            "POST /v1/cars?x=1 HTTP/1.1\r\nHost: v\r\nAuthorization: Bearer t\r\n"
            "X-Forwarded-For: 10.1.2.3, 10.9.9.9, 127.0.0.1\r\nX-Forwarded-Proto: http\r\nVia: 1.1 greenlight\r\n"
            "Content-Length: 2\r\n\r\n");
}

// proxy.request_id: the proxy's id replaces any of that name, in whatever case it came, both ways.
TEST(RequestId, TheProxysIdReplacesAnyOfThatNameBothWays) {
  const std::string req = "GET / HTTP/1.1\r\nHost: v\r\nx-request-id: from-client\r\nX-Request-Id: again\r\n\r\n";
  RequestParser p;
  parse(p, req);
  std::string out;
  writeRequestHead(p, RequestHeadOut{"10.0.0.1", false, {}, false, 0, "X-Request-Id", "id-1"}, out);
  EXPECT_EQ(out,
            "GET / HTTP/1.1\r\nHost: v\r\nX-Request-Id: id-1\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\n"
            "Via: 1.1 greenlight\r\n\r\n");
  const std::string res = "HTTP/1.1 200 OK\r\nX-REQUEST-ID: upstream\r\nContent-Length: 0\r\n\r\n";
  ResponseParser r;
  parse(r, res);
  writeResponseHead(r, ResponseHeadOut{11, true, false, "X-Request-Id", "id-1"}, out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Request-Id: id-1\r\n\r\n");
}

TEST(RequestId, IdsAreUuidVersion4TextAndDiffer) {
  const std::regex uuid_v4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    char id[kRequestIdLength];
    newRequestId(id);
    const std::string s(id, sizeof id);
    EXPECT_TRUE(std::regex_match(s, uuid_v4)) << s;
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(RequestId, OnlyHeaderNamesTheProxyDoesNotManageAreUsable) {
  EXPECT_TRUE(usableRequestIdHeader("X-Request-Id"));
  EXPECT_TRUE(usableRequestIdHeader("X-Correlation-ID"));
  for (const char* bad : {"", "X Request", "X-Request-Id:", "Host", "content-length", "X-Forwarded-For", "Via", "Cookie",
                          "Authorization", "Connection"}) {
    EXPECT_FALSE(usableRequestIdHeader(bad)) << bad;
  }
}

TEST(RequestHead, ABodylessGetHasNoLengthAPostAZeroOne) {
  const std::string get = "GET / HTTP/1.1\r\nHost: v\r\n\r\n";
  const std::string post = "POST / HTTP/1.1\r\nHost: v\r\n\r\n";
  RequestParser g, p;
  parse(g, get);
  parse(p, post);
  std::string out;
  writeRequestHead(g, RequestHeadOut{"10.0.0.1", true, {}, false, 0, {}, {}}, out);
  EXPECT_EQ(out, "GET / HTTP/1.1\r\nHost: v\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nVia: 1.1 greenlight\r\n\r\n");
  writeRequestHead(p, RequestHeadOut{"10.0.0.1", false, {}, false, 0, {}, {}}, out);
  EXPECT_NE(out.find("\r\nContent-Length: 0\r\n\r\n"), std::string::npos) << out;
}

TEST(RequestHead, AStreamedChunkedBodyKeepsItsOtherCodingsAndAnUpgradeItsPair) {
  const std::string chunked = "PUT / HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
  RequestParser c;
  parse(c, chunked);
  std::string out;
  writeRequestHead(c, RequestHeadOut{"10.0.0.1", false, {}, true, 0, {}, {}}, out);
  EXPECT_NE(out.find("\r\nTransfer-Encoding: gzip, chunked\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("Content-Length"), std::string::npos) << out;

  const std::string ws = "GET /ws HTTP/1.1\r\nHost: v\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: k\r\n\r\n";
  RequestParser u;
  parse(u, ws);
  ASSERT_EQ(upgradeOf(u.fields()), "websocket");
  writeRequestHead(u, RequestHeadOut{"10.0.0.1", false, upgradeOf(u.fields()), false, 0, {}, {}}, out);
  EXPECT_EQ(out,
            "GET /ws HTTP/1.1\r\nHost: v\r\nSec-WebSocket-Key: k\r\nX-Forwarded-For: 10.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\nVia: 1.1 greenlight\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
}

TEST(RequestHead, UpgradeNeedsBothHeaders) {
  const std::string only_upgrade = "GET / HTTP/1.1\r\nHost: v\r\nUpgrade: websocket\r\n\r\n";
  RequestParser p;
  parse(p, only_upgrade);
  EXPECT_TRUE(upgradeOf(p.fields()).empty());
}

}  // namespace
}  // namespace greenlight::proxy
