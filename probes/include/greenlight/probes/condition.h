// The Gatus-style condition language: "[STATUS] == 200", "len([BODY].vehicles) > 0",
// "[HEADER].content-type == pat(application/json*)", "[CERTIFICATE_EXPIRATION] > 72h".
// Pure parser and evaluator: no I/O, no clock. Thread-compatible.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "greenlight/common/status.h"
#include "greenlight/common/time_source.h"
#include "greenlight/probes/probe_result.h"

namespace greenlight::probes {

enum class Placeholder {
  kNone,  // a literal
  kStatus,
  kResponseTime,
  kBody,
  kHeader,
  kConnected,
  kIp,
  kCertificateExpiration,
  kDnsRcode,
};

// One step of a JSON path: a key or an array index.
struct PathSegment {
  std::string key;
  int index = -1;  // >= 0 for [n]
};

struct Operand {
  enum class Func { kNone, kLen, kHas };
  Func func = Func::kNone;
  Placeholder placeholder = Placeholder::kNone;
  std::vector<PathSegment> path;  // [BODY] path
  std::string header;             // [HEADER] name, lower-case
  std::string literal;
  std::optional<double> number;  // literal as a number; durations in milliseconds
};

enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe };

struct Condition {
  std::string text;
  Operand left;
  CompareOp op = CompareOp::kEq;
  enum class RightKind { kOperand, kPattern, kAny } right_kind = RightKind::kOperand;
  Operand right;
  std::string pattern;           // pat(...)
  std::vector<std::string> any;  // any(...)
};

// Returns a readable error for bad input, e.g. "unknown placeholder [STAUTS]".
StatusOr<Condition> parseCondition(std::string_view text);
StatusOr<std::vector<PathSegment>> parseJsonPath(std::string_view path);

// What a condition may look at. The body is parsed as JSON at most once, lazily.
class Observation {
 public:
  Observation();
  ~Observation();
  Observation(const Observation&) = delete;
  Observation& operator=(const Observation&) = delete;

  bool connected = false;
  int status = 0;
  Duration response_time{0};
  std::string ip;
  std::optional<Duration> certificate_expires_in;
  std::optional<int> dns_rcode;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string_view body;
  bool body_truncated = false;

  struct Json;
  // nullptr when the body is not valid JSON.
  const Json* json() const;

 private:
  mutable std::unique_ptr<Json> json_;
  mutable bool parsed_ = false;
};

ConditionOutcome evaluate(const Condition& c, const Observation& o);
// The failure reason a failed condition stands for.
FailureReason reasonFor(const Condition& c, const ConditionOutcome& outcome);

// A resolved value of a placeholder: used for captures ("token: [BODY].access_token").
// nullopt if missing.
std::optional<std::string> resolveText(const Operand& operand, const Observation& o);

// Simple glob: '*' matches any run of characters.
bool globMatch(std::string_view pattern, std::string_view text);

}  // namespace greenlight::probes
