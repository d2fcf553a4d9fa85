// Label sets and label matchers (`oem=bmw`, `severity!=info`, `oem=~bmw|ford`, `probe!~tls-.*`)
// with Alertmanager's semantics: regexes are anchored; a missing label equals "".
// Plain values; thread-compatible.
#pragma once

#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "greenlight/common/status.h"

namespace greenlight::alerts {

using Labels = std::map<std::string, std::string>;

// 16 hex digits, stable for a label set across runs and machines (like Alertmanager's).
std::string fingerprint(const Labels& labels);
// {a="1", b="2"}
std::string labelsToString(const Labels& labels);
// The subset of `labels` named in `names` (absent ones are left out).
Labels project(const Labels& labels, const std::vector<std::string>& names);

enum class MatchOp { kEqual, kNotEqual, kRegex, kNotRegex };

struct Matcher {
  std::string name;
  MatchOp op = MatchOp::kEqual;
  std::string value;
  std::shared_ptr<const std::regex> regex;  // for =~ and !~, anchored

  bool matches(const Labels& labels) const;
  std::string toString() const;
};

// Parses `name=value`, `name!=value`, `name=~regex`, `name!~regex` (value may be "quoted").
StatusOr<Matcher> parseMatcher(const std::string& text);
bool matchesAll(const std::vector<Matcher>& matchers, const Labels& labels);

}  // namespace greenlight::alerts
