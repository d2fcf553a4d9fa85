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
  RequestParser parser;
  auto p = parseRequest(GetParam().bytes, {1024, 64}, parser);
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

TEST(ParseRequestBody, ArrivesDechunkedAcrossPieces) {
  const std::string bytes = "POST / HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  RequestParser parser;
  auto p = parseRequest(bytes, {}, parser);
  ASSERT_EQ(p.error, http::status::ok) << p.why;
  EXPECT_EQ(p.body, "abcde");
  EXPECT_EQ(parser.method(), http::verb::post);
  EXPECT_TRUE(parser.chunked());
}

}  // namespace
}  // namespace greenlight::proxy::rules
