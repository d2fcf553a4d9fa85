// Writes the Prometheus text exposition format (0.0.4) straight from compact records, for
// components with many series (10,000 probes): no intermediate metric objects, one string.
// Low-cardinality metrics use prometheus-cpp's registry and TextSerializer instead.
// Thread-compatible.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace greenlight {

// A histogram with fixed upper bounds; counts per bucket (not cumulative), last is +Inf.
struct FixedHistogram {
  explicit FixedHistogram(const std::vector<double>* bounds)
      : bounds(bounds), counts(bounds->size() + 1, 0) {}
  void observe(double v);
  const std::vector<double>* bounds;  // shared, static
  std::vector<uint64_t> counts;
  uint64_t count = 0;
  double sum = 0;
};

// A source of exposition text that writes itself in pieces, so a large one (10,000 probes: tens
// of MB) never sits whole in memory while it is sent. Implementations are thread-safe.
class ExpositionSource {
 public:
  struct Cursor {
    virtual ~Cursor() = default;
  };
  virtual ~ExpositionSource() = default;
  virtual std::unique_ptr<Cursor> begin() const = 0;
  // Appends about `budget` bytes or more; returns false once everything has been written.
  virtual bool next(Cursor& cursor, std::string& out, size_t budget) const = 0;
  // Everything at once (tests, small sources).
  std::string all() const;
};

class ExpositionWriter {
 public:
  explicit ExpositionWriter(std::string& out) : out_(out) {}

  // `{a="x",b="y"` without the closing brace ("" for no labels): built once per series owner.
  static std::string labelPrefix(const std::vector<std::pair<std::string, std::string>>& labels);
  static void appendEscaped(std::string& out, std::string_view value);
  static void appendValue(std::string& out, double value);

  void header(std::string_view name, std::string_view help, std::string_view type);
  // name{prefix,extra} value  — extra is a preformatted `k="v"` or "".
  void sample(std::string_view name, std::string_view prefix, std::string_view extra, double value);
  void histogram(std::string_view name, std::string_view prefix, const FixedHistogram& h);

 private:
  void labels(std::string_view prefix, std::string_view extra);
  std::string& out_;
};

}  // namespace greenlight
