#include "greenlight/alerts/labels.h"

#include <cctype>
#include <cstdio>

namespace greenlight::alerts {

std::string fingerprint(const Labels& labels) {
  // FNV-1a 64 over name, value pairs with separators that cannot occur in label names.
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  for (const auto& [k, v] : labels) {
    mix(k);
    mix(std::string_view("\xff", 1));
    mix(v);
    mix(std::string_view("\xfe", 1));
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

std::string labelsToString(const Labels& labels) {
  std::string out = "{";
  for (const auto& [k, v] : labels) {
    if (out.size() > 1) out += ", ";
    out += k + "=\"" + v + "\"";
  }
  return out + "}";
}

Labels project(const Labels& labels, const std::vector<std::string>& names) {
  Labels out;
  for (const auto& n : names) {
    if (auto it = labels.find(n); it != labels.end()) out.insert(*it);
  }
  return out;
}

bool Matcher::matches(const Labels& labels) const {
  auto it = labels.find(name);
  const std::string& v = it == labels.end() ? std::string() : it->second;
  switch (op) {
    case MatchOp::kEqual: return v == value;
    case MatchOp::kNotEqual: return v != value;
    case MatchOp::kRegex: return std::regex_match(v, *regex);
    case MatchOp::kNotRegex: return !std::regex_match(v, *regex);
  }
  return false;
}

std::string Matcher::toString() const {
  static const char* ops[] = {"=", "!=", "=~", "!~"};
  return name + ops[static_cast<int>(op)] + "\"" + value + "\"";
}

StatusOr<Matcher> parseMatcher(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_')) ++i;
  Matcher m;
  m.name = text.substr(0, i);
  if (m.name.empty() || std::isdigit(static_cast<unsigned char>(m.name[0]))) {
    return InvalidArgument("expected a matcher like oem=bmw, oem!=bmw, oem=~\"bmw|ford\" or oem!~tesla, got \"" + text + "\"");
  }
  const std::string rest = text.substr(i);
  size_t op_len = 0;
  if (rest.rfind("=~", 0) == 0) m.op = MatchOp::kRegex, op_len = 2;
  else if (rest.rfind("!~", 0) == 0) m.op = MatchOp::kNotRegex, op_len = 2;
  else if (rest.rfind("!=", 0) == 0) m.op = MatchOp::kNotEqual, op_len = 2;
  else if (rest.rfind("=", 0) == 0) m.op = MatchOp::kEqual, op_len = 1;
  else return InvalidArgument("expected =, !=, =~ or !~ after \"" + m.name + "\" in \"" + text + "\"");
  m.value = rest.substr(op_len);
  if (m.value.size() >= 2 && m.value.front() == '"' && m.value.back() == '"') m.value = m.value.substr(1, m.value.size() - 2);
  if (m.op == MatchOp::kRegex || m.op == MatchOp::kNotRegex) {
    try {
      m.regex = std::make_shared<const std::regex>(m.value, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return InvalidArgument("bad regular expression \"" + m.value + "\": " + e.what());
    }
  }
  return m;
}

bool matchesAll(const std::vector<Matcher>& matchers, const Labels& labels) {
  for (const auto& m : matchers) {
    if (!m.matches(labels)) return false;
  }
  return true;
}

}  // namespace greenlight::alerts
