#include <gtest/gtest.h>

#include "../../proxy/src/request_rules.h"

namespace greenlight::proxy::rules {
namespace {

struct Case {
  const char* name;
  std::string bytes;
  http::status want;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ParseRequest : public ::testing::TestWithParam<Case> {};

TEST_P(ParseRequest, GivesTheExpectedVerdict) {
  auto p = parseRequest(GetParam().bytes, {1024, 64});
  EXPECT_EQ(p.error, GetParam().want) << p.why;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseRequest,
    ::testing::Values(
        Case{"plain get", "GET / HTTP/1.1\r\nHost: v\r\n\r\n", http::status::ok},
        Case{"chunked post", "POST / HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", http::status::ok},
        Case{"cl and te", "POST / HTTP/1.1\r\nHost: v\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", http::status::bad_request},
        Case{"two lengths", "POST / HTTP/1.1\r\nHost: v\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", http::status::bad_request},
        Case{"obs-fold", "GET / HTTP/1.1\r\nHost: v\r\nX: a\r\n\tb\r\n\r\n", http::status::bad_request},
        Case{"bad chunk", "POST / HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", http::status::bad_request},
        Case{"truncated body", "POST / HTTP/1.1\r\nHost: v\r\nContent-Length: 10\r\n\r\nabc", http::status::bad_request},
        Case{"head too large", "GET / HTTP/1.1\r\nHost: v\r\nX: " + std::string(2000, 'a') + "\r\n\r\n", http::status::request_header_fields_too_large},
        Case{"body too large", "POST / HTTP/1.1\r\nHost: v\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'a'), http::status::payload_too_large},
        Case{"odd expectation", "GET / HTTP/1.1\r\nHost: v\r\nExpect: magic\r\n\r\n", http::status::expectation_failed}));

TEST(PrepareForUpstream, LeavesOneUnambiguousFraming) {
  auto p = parseRequest("POST / HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\nConnection: X-Hop\r\nX-Hop: 1\r\nTE: trailers\r\n\r\n2\r\nhi\r\n0\r\n\r\n", {});
  ASSERT_EQ(p.error, http::status::ok) << p.why;
  prepareForUpstream(p.request, "10.0.0.1");
  EXPECT_EQ(p.request.find(http::field::transfer_encoding), p.request.end());
  EXPECT_EQ(p.request[http::field::content_length], "2");
  EXPECT_EQ(p.request.find("X-Hop"), p.request.end());
  EXPECT_EQ(p.request.find(http::field::te), p.request.end());
  EXPECT_EQ(p.request["X-Forwarded-For"], "10.0.0.1");
  EXPECT_EQ(p.request.body(), "hi");
}

}  // namespace
}  // namespace greenlight::proxy::rules
