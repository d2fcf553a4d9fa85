#include "greenlight/common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

namespace greenlight {
namespace {

// Formats each record as one JSON object; nlohmann escapes the message correctly.
class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto secs = std::chrono::system_clock::to_time_t(msg.time);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch())
                  .count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char ts[64];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    nlohmann::json j;
    j["ts"] = ts;
    auto level = spdlog::level::to_string_view(msg.level);
    j["level"] = std::string(level.data(), level.size());
    j["msg"] = std::string(msg.payload.data(), msg.payload.size());
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLineFormatter>();
  }
};

// Redacts the message, then formats it with the inner formatter.
class RedactingFormatter final : public spdlog::formatter {
 public:
  RedactingFormatter(std::unique_ptr<spdlog::formatter> inner, std::vector<std::string> fields)
      : inner_(std::move(inner)), fields_(std::move(fields)) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string clean = redactSecrets(std::string_view(msg.payload.data(), msg.payload.size()), fields_);
    spdlog::details::log_msg copy = msg;
    copy.payload = spdlog::string_view_t(clean.data(), clean.size());
    inner_->format(copy, dest);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<RedactingFormatter>(inner_->clone(), fields_);
  }

 private:
  std::unique_ptr<spdlog::formatter> inner_;
  std::vector<std::string> fields_;
};

bool isWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }

}  // namespace

const std::vector<std::string>& defaultRedactedFields() {
  static const std::vector<std::string> fields = {"authorization", "proxy-authorization", "access_token", "refresh_token",
                                                  "id_token", "client_secret", "password", "api_key", "x-api-key",
                                                  "set-cookie", "cookie"};
  return fields;
}

std::string redactSecrets(std::string_view text, const std::vector<std::string>& fields) {
  std::string lower(text);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // Each value to hide, as [begin, end) in text.
  std::vector<std::pair<size_t, size_t>> spans;
  for (const auto& f : fields) {
    if (f.empty()) continue;
    std::string key(f);
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (size_t at = lower.find(key); at != std::string::npos; at = lower.find(key, at + 1)) {
      if (at > 0 && isWordChar(lower[at - 1])) continue;
      size_t i = at + key.size();
      if (i < lower.size() && isWordChar(lower[i])) continue;
      if (i < lower.size() && (lower[i] == '"' || lower[i] == '\'')) ++i;
      while (i < lower.size() && lower[i] == ' ') ++i;
      if (i >= lower.size() || (lower[i] != ':' && lower[i] != '=')) continue;
      ++i;
      while (i < lower.size() && lower[i] == ' ') ++i;
      char quote = 0;
      if (i < lower.size() && (lower[i] == '"' || lower[i] == '\'')) quote = lower[i++];
      // "Authorization: Bearer X": keep the scheme, hide the credentials.
      for (const char* scheme : {"bearer ", "basic ", "token "}) {
        if (lower.compare(i, std::strlen(scheme), scheme) == 0) i += std::strlen(scheme);
      }
      size_t end = i;
      while (end < lower.size()) {
        const char c = lower[end];
        if (quote ? c == quote : (c == ' ' || c == ',' || c == ';' || c == '&' || c == '}' || c == '"' || c == '\'' ||
                                  c == '\n' || c == '\r' || c == '\t')) {
          break;
        }
        ++end;
      }
      if (end > i) spans.emplace_back(i, end);
    }
  }
  if (spans.empty()) return std::string(text);
  std::sort(spans.begin(), spans.end());
  std::string out;
  size_t pos = 0;
  for (const auto& [b, e] : spans) {
    if (b < pos) continue;  // overlaps one already hidden
    out.append(text.substr(pos, b - pos));
    out.append("[REDACTED]");
    pos = e;
  }
  out.append(text.substr(pos));
  return out;
}

LogOptions parseLogOptions(ConfigReader& r, const YAML::Node& log, const std::string& field) {
  LogOptions o;
  if (!log.IsDefined() || log.IsNull() || !r.expectMap(log, field, {"format", "level", "redact"})) return o;
  o.redact = r.getStringList(log, field, "redact");
  if (auto f = r.getString(log, field, "format")) {
    if (*f == "text") o.format = LogFormat::kText;
    else if (*f == "json") o.format = LogFormat::kJson;
    else r.error(log["format"], ConfigReader::join(field, "format"), "expected text or json, got \"" + *f + "\"");
  }
  if (auto l = r.getString(log, field, "level")) {
    static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
    bool ok = false;
    for (const char* k : kLevels) ok = ok || *l == k;
    if (!ok) {
      r.error(log["level"], ConfigReader::join(field, "level"),
              "expected trace, debug, info, warn or error, got \"" + *l + "\"");
    } else {
      o.level = *l;
    }
  }
  return o;
}

Status initLogging(LogFormat format, const std::string& level, const std::vector<std::string>& redact) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidArgument("log level must be one of trace, debug, info, warn, error; got \"" +
                           level + "\"");
  }
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("greenlight", sink);
  std::vector<std::string> fields = defaultRedactedFields();
  fields.insert(fields.end(), redact.begin(), redact.end());
  std::unique_ptr<spdlog::formatter> inner;
  if (format == LogFormat::kJson) {
    inner = std::make_unique<JsonLineFormatter>();
  } else {
    inner = std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  logger->set_formatter(std::make_unique<RedactingFormatter>(std::move(inner), std::move(fields)));
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return Status::Ok();
}

}  // namespace greenlight
