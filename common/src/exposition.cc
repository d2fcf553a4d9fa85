#include "greenlight/common/exposition.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace greenlight {

std::string ExpositionSource::all() const {
  std::string out;
  auto cursor = begin();
  while (next(*cursor, out, 1 << 20)) {
  }
  return out;
}

void FixedHistogram::observe(double v) {
  size_t i = std::lower_bound(bounds->begin(), bounds->end(), v) - bounds->begin();
  ++counts[i];
  ++count;
  sum += v;
}

std::string ExpositionWriter::labelPrefix(
    const std::vector<std::pair<std::string, std::string>>& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    out += out.empty() ? "{" : ",";
    out += k;
    out += "=\"";
    appendEscaped(out, v);
    out += '"';
  }
  return out;
}

void ExpositionWriter::appendEscaped(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

void ExpositionWriter::appendValue(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else if (value == std::floor(value) && std::fabs(value) < 1e15) {
    out += std::to_string(static_cast<int64_t>(value));  // counters, codes, unix times
  } else {
    char buf[32];
    auto res = std::to_chars(buf, buf + sizeof buf, value);  // shortest round-trip form
    out.append(buf, res.ptr);
  }
}

void ExpositionWriter::header(std::string_view name, std::string_view help,
                              std::string_view type) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += help;
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void ExpositionWriter::labels(std::string_view prefix, std::string_view extra) {
  if (prefix.empty() && extra.empty()) return;
  if (prefix.empty()) {
    out_ += '{';
  } else {
    out_ += prefix;
    if (!extra.empty()) out_ += ',';
  }
  out_ += extra;
  out_ += '}';
}

void ExpositionWriter::sample(std::string_view name, std::string_view prefix,
                              std::string_view extra, double value) {
  out_ += name;
  labels(prefix, extra);
  out_ += ' ';
  appendValue(out_, value);
  out_ += '\n';
}

void ExpositionWriter::histogram(std::string_view name, std::string_view prefix,
                                 const FixedHistogram& h) {
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  std::string le;
  for (size_t i = 0; i < h.counts.size(); ++i) {
    cumulative += h.counts[i];
    le = "le=\"";
    if (i < h.bounds->size()) appendValue(le, (*h.bounds)[i]);
    else le += "+Inf";
    le += '"';
    sample(bucket, prefix, le, static_cast<double>(cumulative));
  }
  sample(std::string(name) + "_sum", prefix, "", h.sum);
  sample(std::string(name) + "_count", prefix, "", static_cast<double>(h.count));
}

}  // namespace greenlight
