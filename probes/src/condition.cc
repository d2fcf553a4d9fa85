#include "greenlight/probes/condition.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "greenlight/common/duration.h"

namespace greenlight::probes {

struct Observation::Json {
  nlohmann::json value;
};

Observation::Observation() = default;
Observation::~Observation() = default;

const Observation::Json* Observation::json() const {
  if (!parsed_) {
    parsed_ = true;
    auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) json_ = std::make_unique<Json>(Json{std::move(parsed)});
  }
  return json_.get();
}

namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<double> parseNumber(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::string str(s);
  char* end = nullptr;
  double v = std::strtod(str.c_str(), &end);
  if (end != str.c_str() + str.size() || !std::isfinite(v)) return std::nullopt;
  if (std::isspace(static_cast<unsigned char>(str[0]))) return std::nullopt;
  return v;
}

// A literal as a number: plain numbers, or durations in milliseconds ("72h", "800ms").
std::optional<double> literalNumber(std::string_view s) {
  if (auto n = parseNumber(s)) return n;
  if (auto d = parseDuration(s)) return std::chrono::duration<double, std::milli>(*d).count();
  return std::nullopt;
}

std::string formatNumber(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  std::ostringstream out;
  out << v;
  return out.str();
}

struct PlaceholderName {
  const char* name;
  Placeholder ph;
};
constexpr PlaceholderName kPlaceholders[] = {
    {"[STATUS]", Placeholder::kStatus},
    {"[RESPONSE_TIME]", Placeholder::kResponseTime},
    {"[BODY]", Placeholder::kBody},
    {"[HEADER]", Placeholder::kHeader},
    {"[CONNECTED]", Placeholder::kConnected},
    {"[IP]", Placeholder::kIp},
    {"[CERTIFICATE_EXPIRATION]", Placeholder::kCertificateExpiration},
    {"[DNS_RCODE]", Placeholder::kDnsRcode},
};

Status parseOperand(std::string_view raw, Operand* out) {
  std::string text = trim(raw);
  if (text.empty()) return InvalidArgument("missing operand");
  std::string up = upper(text);
  for (auto [prefix, func] : {std::pair{"LEN(", Operand::Func::kLen},
                              std::pair{"HAS(", Operand::Func::kHas}}) {
    if (up.rfind(prefix, 0) == 0) {
      if (text.back() != ')') return InvalidArgument("missing \")\" in \"" + text + "\"");
      out->func = func;
      text = trim(std::string_view(text).substr(4, text.size() - 5));
      up = upper(text);
      if (text.empty() || text[0] != '[') {
        return InvalidArgument(std::string(func == Operand::Func::kLen ? "len" : "has") +
                               "() takes a placeholder such as [BODY].items, got \"" + text +
                               "\"");
      }
      break;
    }
  }
  if (text[0] != '[') {
    out->literal = text;
    out->number = literalNumber(text);
    return Status::Ok();
  }
  for (const auto& p : kPlaceholders) {
    std::string_view name(p.name);
    if (up.compare(0, name.size(), name) != 0) continue;
    out->placeholder = p.ph;
    std::string_view rest = std::string_view(text).substr(name.size());
    if (p.ph == Placeholder::kBody) {
      if (!rest.empty()) {
        auto path = parseJsonPath(rest);
        if (!path.ok()) return path.status();
        out->path = std::move(path.value());
      }
    } else if (p.ph == Placeholder::kHeader) {
      if (rest.size() < 2 || rest[0] != '.') {
        return InvalidArgument("[HEADER] needs a header name, as in [HEADER].content-type");
      }
      out->header = lower(rest.substr(1));
    } else if (!rest.empty()) {
      return InvalidArgument("unexpected \"" + std::string(rest) + "\" after " + p.name);
    }
    if (out->func == Operand::Func::kLen && p.ph != Placeholder::kBody &&
        p.ph != Placeholder::kHeader) {
      return InvalidArgument(std::string("len() applies to [BODY] or [HEADER], not ") + p.name);
    }
    return Status::Ok();
  }
  auto close = text.find(']');
  return InvalidArgument(
      "unknown placeholder " + text.substr(0, close == std::string::npos ? text.size() : close + 1) +
      " (expected [STATUS], [RESPONSE_TIME], [BODY], [HEADER].name, [CONNECTED], [IP], "
      "[CERTIFICATE_EXPIRATION] or [DNS_RCODE])");
}

std::vector<std::string> splitArgs(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == ',') {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  return out;
}

// A resolved value with a type, for comparison.
struct Value {
  enum class Kind { kMissing, kNull, kBool, kNumber, kString, kComposite } kind = Kind::kMissing;
  double number = 0;
  std::string text;
  size_t length = 0;
  std::string error;  // why it could not be resolved (e.g. body not JSON)
};

Value fromJson(const nlohmann::json& j) {
  Value v;
  if (j.is_null()) {
    v.kind = Value::Kind::kNull;
    v.text = "null";
  } else if (j.is_boolean()) {
    v.kind = Value::Kind::kBool;
    v.text = j.get<bool>() ? "true" : "false";
  } else if (j.is_number()) {
    v.kind = Value::Kind::kNumber;
    v.number = j.get<double>();
    v.text = j.is_number_float() ? j.dump() : formatNumber(v.number);
  } else if (j.is_string()) {
    v.kind = Value::Kind::kString;
    v.text = j.get<std::string>();
    v.length = v.text.size();
  } else {
    v.kind = Value::Kind::kComposite;
    v.text = j.dump();
    v.length = j.size();
  }
  return v;
}

Value resolve(const Operand& op, const Observation& o) {
  Value v;
  auto number = [&v](double n) {
    v.kind = Value::Kind::kNumber;
    v.number = n;
    v.text = formatNumber(n);
  };
  switch (op.placeholder) {
    case Placeholder::kNone:
      v.kind = Value::Kind::kString;
      v.text = op.literal;
      v.length = v.text.size();
      if (op.number) {
        v.kind = Value::Kind::kNumber;
        v.number = *op.number;
      }
      return v;
    case Placeholder::kStatus: number(o.status); return v;
    case Placeholder::kResponseTime:
      number(std::chrono::duration<double, std::milli>(o.response_time).count());
      v.number = std::round(v.number);
      v.text = formatNumber(v.number);
      return v;
    case Placeholder::kConnected:
      v.kind = Value::Kind::kBool;
      v.text = o.connected ? "true" : "false";
      return v;
    case Placeholder::kIp:
      v.kind = Value::Kind::kString;
      v.text = o.ip;
      v.length = o.ip.size();
      return v;
    case Placeholder::kCertificateExpiration:
      if (!o.certificate_expires_in) {
        v.error = "no certificate was presented";
        return v;
      }
      number(std::floor(std::chrono::duration<double, std::milli>(*o.certificate_expires_in).count()));
      v.text = formatDuration(std::chrono::duration_cast<std::chrono::seconds>(*o.certificate_expires_in));
      return v;
    case Placeholder::kDnsRcode:
      if (!o.dns_rcode) {
        v.error = "no DNS answer";
        return v;
      }
      number(*o.dns_rcode);
      return v;
    case Placeholder::kHeader:
      for (const auto& [name, value] : o.headers) {
        if (name == op.header) {
          v.kind = Value::Kind::kString;
          v.text = value;
          v.length = value.size();
          return v;
        }
      }
      return v;
    case Placeholder::kBody: {
      if (o.body_truncated) {
        v.error = "the body is larger than the probe's max_body_bytes";
        return v;
      }
      if (op.path.empty()) {
        v.kind = Value::Kind::kString;
        v.text = std::string(o.body);
        v.length = v.text.size();
        return v;
      }
      const Observation::Json* json = o.json();
      if (!json) {
        v.error = "the body is not valid JSON";
        return v;
      }
      const nlohmann::json* cur = &json->value;
      for (const auto& seg : op.path) {
        if (seg.index >= 0) {
          if (!cur->is_array() || static_cast<size_t>(seg.index) >= cur->size()) return v;
          cur = &(*cur)[static_cast<size_t>(seg.index)];
        } else {
          if (!cur->is_object()) return v;
          auto it = cur->find(seg.key);
          if (it == cur->end()) return v;
          cur = &*it;
        }
      }
      return fromJson(*cur);
    }
  }
  return v;
}

Value applyFunc(const Operand& op, Value v) {
  if (op.func == Operand::Func::kHas) {
    Value out;
    out.kind = Value::Kind::kBool;
    out.text = (v.kind != Value::Kind::kMissing) ? "true" : "false";
    out.error = v.error;
    return out;
  }
  if (op.func == Operand::Func::kLen) {
    if (v.kind == Value::Kind::kString || v.kind == Value::Kind::kComposite) {
      Value out;
      out.kind = Value::Kind::kNumber;
      out.number = static_cast<double>(v.length);
      out.text = formatNumber(out.number);
      return out;
    }
    Value out;
    out.error = v.error.empty() ? (v.kind == Value::Kind::kMissing
                                       ? std::string("the value is missing")
                                       : "len() needs a string, array or object, got " + v.text)
                                : v.error;
    return out;
  }
  return v;
}

std::optional<double> asNumber(const Value& v) {
  if (v.kind == Value::Kind::kNumber) return v.number;
  if (v.kind == Value::Kind::kString) return parseNumber(v.text);
  return std::nullopt;
}

bool equalValues(const Value& a, const Value& b) {
  if (a.kind == Value::Kind::kMissing || b.kind == Value::Kind::kMissing) return false;
  auto na = asNumber(a), nb = asNumber(b);
  if (na && nb) return *na == *nb;
  return a.text == b.text;
}

const char* opText(CompareOp op) {
  switch (op) {
    case CompareOp::kEq: return "==";
    case CompareOp::kNe: return "!=";
    case CompareOp::kLt: return "<";
    case CompareOp::kLe: return "<=";
    case CompareOp::kGt: return ">";
    case CompareOp::kGe: return ">=";
  }
  return "?";
}

}  // namespace

StatusOr<std::vector<PathSegment>> parseJsonPath(std::string_view path) {
  std::vector<PathSegment> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '.') {
      size_t start = ++i;
      while (i < path.size() && path[i] != '.' && path[i] != '[') ++i;
      if (i == start) return InvalidArgument("empty key in JSON path \"" + std::string(path) + "\"");
      out.push_back({std::string(path.substr(start, i - start)), -1});
    } else if (path[i] == '[') {
      size_t close = path.find(']', i);
      if (close == std::string_view::npos) {
        return InvalidArgument("missing \"]\" in JSON path \"" + std::string(path) + "\"");
      }
      std::string_view digits = path.substr(i + 1, close - i - 1);
      if (digits.empty() || digits.size() > 9 ||
          !std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
        return InvalidArgument("array index must be a number in JSON path \"" +
                               std::string(path) + "\", got [" + std::string(digits) + "]");
      }
      out.push_back({"", std::stoi(std::string(digits))});
      i = close + 1;
    } else {
      return InvalidArgument("expected \".key\" or \"[index]\" in JSON path \"" +
                             std::string(path) + "\"");
    }
  }
  return out;
}

StatusOr<Condition> parseCondition(std::string_view text) {
  Condition c;
  c.text = trim(text);
  static const std::pair<const char*, CompareOp> kOps[] = {
      {" == ", CompareOp::kEq}, {" != ", CompareOp::kNe}, {" <= ", CompareOp::kLe},
      {" >= ", CompareOp::kGe}, {" < ", CompareOp::kLt},  {" > ", CompareOp::kGt},
  };
  size_t best = std::string::npos, best_len = 0;
  for (const auto& [token, op] : kOps) {
    size_t at = c.text.find(token);
    if (at != std::string::npos && at < best) {
      best = at;
      best_len = std::strlen(token);
      c.op = op;
    }
  }
  if (best == std::string::npos) {
    return InvalidArgument("condition \"" + c.text +
                           "\": expected LEFT OP RIGHT with one of ==, !=, <, <=, >, >= "
                           "surrounded by spaces, e.g. \"[STATUS] == 200\"");
  }
  auto fail = [&c](const Status& s) {
    return InvalidArgument("condition \"" + c.text + "\": " + s.message());
  };
  if (Status s = parseOperand(std::string_view(c.text).substr(0, best), &c.left); !s.ok()) {
    return fail(s);
  }
  if (c.left.placeholder == Placeholder::kNone) {
    return fail(InvalidArgument("the left side must be a placeholder such as [STATUS] or "
                                "[BODY].path, got \"" + c.left.literal + "\""));
  }
  std::string right = trim(std::string_view(c.text).substr(best + best_len));
  std::string right_up = upper(right);
  const bool equality = c.op == CompareOp::kEq || c.op == CompareOp::kNe;
  if (right_up.rfind("PAT(", 0) == 0 || right_up.rfind("ANY(", 0) == 0) {
    if (!equality) return fail(InvalidArgument("pat() and any() go with == or != only"));
    if (right.back() != ')') return fail(InvalidArgument("missing \")\" in \"" + right + "\""));
    std::string inner = right.substr(4, right.size() - 5);
    if (right_up[0] == 'P') {
      c.right_kind = Condition::RightKind::kPattern;
      c.pattern = inner;
    } else {
      c.right_kind = Condition::RightKind::kAny;
      c.any = splitArgs(inner);
      if (c.any.empty() || std::any_of(c.any.begin(), c.any.end(),
                                       [](const std::string& a) { return a.empty(); })) {
        return fail(InvalidArgument("any() needs a comma-separated list of values"));
      }
    }
    return c;
  }
  if (Status s = parseOperand(right, &c.right); !s.ok()) return fail(s);
  if (!equality && c.right.placeholder == Placeholder::kNone && !c.right.number) {
    return fail(InvalidArgument(std::string("expected a number or a duration such as 72h on the "
                                            "right of ") + opText(c.op) + ", got \"" + right + "\""));
  }
  if (c.left.placeholder == Placeholder::kCertificateExpiration &&
      c.right.placeholder == Placeholder::kNone && !parseDuration(right) && !parseNumber(right)) {
    return fail(InvalidArgument("compare [CERTIFICATE_EXPIRATION] with a duration such as 72h"));
  }
  return c;
}

bool globMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

ConditionOutcome evaluate(const Condition& c, const Observation& o) {
  ConditionOutcome out;
  out.condition = c.text;
  Value left = applyFunc(c.left, resolve(c.left, o));
  out.actual = left.kind == Value::Kind::kMissing ? "<missing>" : left.text;
  if (!left.error.empty()) {
    out.error = left.error;
    return out;
  }
  switch (c.right_kind) {
    case Condition::RightKind::kPattern: {
      bool m = left.kind != Value::Kind::kMissing && globMatch(c.pattern, left.text);
      out.passed = (c.op == CompareOp::kEq) == m;
      return out;
    }
    case Condition::RightKind::kAny: {
      bool m = false;
      for (const auto& a : c.any) {
        Operand lit;
        lit.literal = a;
        lit.number = literalNumber(a);
        m = m || equalValues(left, resolve(lit, o));
      }
      out.passed = (c.op == CompareOp::kEq) == m;
      return out;
    }
    case Condition::RightKind::kOperand: break;
  }
  Value right = applyFunc(c.right, resolve(c.right, o));
  if (!right.error.empty()) {
    out.error = "right side: " + right.error;
    return out;
  }
  if (c.op == CompareOp::kEq || c.op == CompareOp::kNe) {
    out.passed = (c.op == CompareOp::kEq) == equalValues(left, right);
    return out;
  }
  auto a = asNumber(left), b = asNumber(right);
  if (!a) {
    out.error = left.kind == Value::Kind::kMissing ? "the value is missing"
                                                   : "\"" + left.text + "\" is not a number";
    return out;
  }
  if (!b) {
    out.error = "right side \"" + right.text + "\" is not a number";
    return out;
  }
  switch (c.op) {
    case CompareOp::kLt: out.passed = *a < *b; break;
    case CompareOp::kLe: out.passed = *a <= *b; break;
    case CompareOp::kGt: out.passed = *a > *b; break;
    case CompareOp::kGe: out.passed = *a >= *b; break;
    default: break;
  }
  return out;
}

FailureReason reasonFor(const Condition& c, const ConditionOutcome& outcome) {
  if (outcome.error == "the body is not valid JSON") return FailureReason::kInvalidBody;
  switch (c.left.placeholder) {
    case Placeholder::kStatus: return FailureReason::kStatus;
    case Placeholder::kResponseTime: return FailureReason::kLatency;
    case Placeholder::kCertificateExpiration: return FailureReason::kCertificate;
    case Placeholder::kConnected: return FailureReason::kConnect;
    default: return FailureReason::kCondition;
  }
}

std::optional<std::string> resolveText(const Operand& operand, const Observation& o) {
  Value v = applyFunc(operand, resolve(operand, o));
  if (v.kind == Value::Kind::kMissing || v.kind == Value::Kind::kNull) return std::nullopt;
  return v.text;
}

const char* reasonName(FailureReason r) {
  switch (r) {
    case FailureReason::kNone: return "none";
    case FailureReason::kDns: return "dns";
    case FailureReason::kConnect: return "connect";
    case FailureReason::kTls: return "tls";
    case FailureReason::kTimeout: return "timeout";
    case FailureReason::kConnection: return "connection";
    case FailureReason::kHttp: return "http";
    case FailureReason::kStatus: return "status";
    case FailureReason::kLatency: return "latency";
    case FailureReason::kCertificate: return "certificate";
    case FailureReason::kInvalidBody: return "invalid_body";
    case FailureReason::kCondition: return "condition";
    case FailureReason::kCapture: return "capture";
    case FailureReason::kCount: break;
  }
  return "unknown";
}

}  // namespace greenlight::probes
