#include "greenlight/common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
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

}  // namespace

LogOptions parseLogOptions(ConfigReader& r, const YAML::Node& log, const std::string& field) {
  LogOptions o;
  if (!log.IsDefined() || log.IsNull() || !r.expectMap(log, field, {"format", "level"})) return o;
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

Status initLogging(LogFormat format, const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidArgument("log level must be one of trace, debug, info, warn, error; got \"" +
                           level + "\"");
  }
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("greenlight", sink);
  if (format == LogFormat::kJson) {
    logger->set_formatter(std::make_unique<JsonLineFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return Status::Ok();
}

}  // namespace greenlight
