#include "greenlight/common/config_reader.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "greenlight/common/duration.h"

namespace greenlight {

std::string ConfigError::toString() const {
  std::ostringstream out;
  out << file;
  if (line > 0) out << ":" << line << ":" << column;
  out << ": ";
  if (!field.empty()) out << field << ": ";
  out << message;
  return out.str();
}

std::string ConfigErrors::format() const {
  std::string out;
  for (const auto& e : errors_) out += e.toString() + "\n";
  return out;
}

EnvLookup processEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

ConfigReader::ConfigReader(std::string file, ConfigErrors& errors, EnvLookup env)
    : file_(std::move(file)), errors_(errors), env_(std::move(env)) {}

std::optional<YAML::Node> ConfigReader::loadFile() {
  try {
    return YAML::LoadFile(file_);
  } catch (const YAML::BadFile&) {
    errors_.add({file_, 0, 0, "", "cannot read the file"});
  } catch (const YAML::Exception& e) {
    errors_.add({file_, e.mark.line + 1, e.mark.column + 1, "", "YAML syntax error: " + e.msg});
  }
  return std::nullopt;
}

std::optional<YAML::Node> ConfigReader::loadString(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    errors_.add({file_, e.mark.line + 1, e.mark.column + 1, "", "YAML syntax error: " + e.msg});
  }
  return std::nullopt;
}

void ConfigReader::error(const YAML::Node& at, const std::string& field,
                         const std::string& message) {
  int line = 0, column = 0;
  if (at.IsDefined() && at.Mark().line >= 0) {
    line = at.Mark().line + 1;
    column = at.Mark().column + 1;
  }
  errors_.add({file_, line, column, field, message});
}

std::string ConfigReader::join(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

std::string ConfigReader::index(const std::string& parent, size_t i) {
  return parent + "[" + std::to_string(i) + "]";
}

bool ConfigReader::expectMap(const YAML::Node& node, const std::string& field,
                             const std::vector<std::string_view>& allowed) {
  if (!node.IsMap()) {
    error(node, field, "expected a mapping of keys to values");
    return false;
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>("");
    bool known = false;
    for (auto a : allowed) known = known || a == key;
    if (!known) {
      std::string expected;
      for (auto a : allowed) expected += (expected.empty() ? "" : ", ") + std::string(a);
      error(kv.first, join(field, key), "unknown key (expected one of: " + expected + ")");
    }
  }
  return true;
}

bool ConfigReader::expectSequence(const YAML::Node& node, const std::string& field) {
  if (!node.IsSequence()) {
    error(node, field, "expected a list");
    return false;
  }
  return true;
}

std::optional<std::string> ConfigReader::expand(const YAML::Node& at, const std::string& field,
                                                const std::string& text,
                                                const std::set<std::string>* keep) {
  std::string out;
  out.reserve(text.size());
  bool ok = true;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, "$${") == 0) {  // escaped: a literal "${"
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == std::string::npos) {
      error(at, field, "unterminated \"${\" (write \"$${\" for a literal \"${\")");
      return std::nullopt;
    }
    std::string name = text.substr(i + 2, close - i - 2);
    if (keep && keep->count(name)) {
      out += text.substr(i, close - i + 1);
    } else if (name.rfind("secret:", 0) == 0) {
      auto it = secrets_.find(name.substr(7));
      if (it == secrets_.end()) {
        error(at, field, "${" + name + "}: no secret named \"" + name.substr(7) + "\" in the secrets file" +
                             std::string(secrets_.empty() ? " (is there a secrets: section before this?)" : ""));
        ok = false;
      } else {
        out += it->second;
      }
    } else if (auto v = env_(name)) {
      out += *v;
    } else {
      error(at, field,
            "${" + name + "} is neither an environment variable that is set" +
                std::string(keep ? " nor a value captured by an earlier step" : ""));
      ok = false;
    }
    i = close + 1;
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::string> ConfigReader::scalar(const YAML::Node& map, const std::string& parent,
                                                const char* key, bool required,
                                                YAML::Node* out) {
  const YAML::Node node = map[key];
  if (!node.IsDefined() || node.IsNull()) {
    if (required) error(map, join(parent, key), "is required");
    return std::nullopt;
  }
  if (!node.IsScalar()) {
    error(node, join(parent, key), "expected a single value, not a list or mapping");
    return std::nullopt;
  }
  *out = node;
  return node.Scalar();
}

std::optional<std::string> ConfigReader::getString(const YAML::Node& map,
                                                   const std::string& parent, const char* key,
                                                   bool required,
                                                   const std::set<std::string>* keep) {
  YAML::Node node;
  auto raw = scalar(map, parent, key, required, &node);
  if (!raw) return std::nullopt;
  return expand(node, join(parent, key), *raw, keep);
}

std::optional<Duration> ConfigReader::getDuration(const YAML::Node& map,
                                                  const std::string& parent, const char* key,
                                                  bool required) {
  YAML::Node node;
  auto raw = scalar(map, parent, key, required, &node);
  if (!raw) return std::nullopt;
  auto d = parseDuration(*raw);
  if (!d) {
    error(node, join(parent, key),
          "expected a duration like \"30s\", \"500ms\" or \"5m\", got \"" + *raw + "\"");
  }
  return d;
}

std::optional<int64_t> ConfigReader::getInt(const YAML::Node& map, const std::string& parent,
                                            const char* key, int64_t min, int64_t max,
                                            bool required) {
  YAML::Node node;
  auto raw = scalar(map, parent, key, required, &node);
  if (!raw) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(raw->c_str(), &end, 10);
  if (raw->empty() || *end != '\0' || errno == ERANGE || v < min || v > max) {
    error(node, join(parent, key),
          "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
              ", got \"" + *raw + "\"");
    return std::nullopt;
  }
  return v;
}

std::optional<double> ConfigReader::getDouble(const YAML::Node& map, const std::string& parent,
                                              const char* key, double min, double max,
                                              bool required) {
  YAML::Node node;
  auto raw = scalar(map, parent, key, required, &node);
  if (!raw) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(raw->c_str(), &end);
  if (raw->empty() || *end != '\0' || !std::isfinite(v) || v < min || v > max) {
    std::ostringstream msg;
    msg << "expected a number from " << min << " to " << max << ", got \"" << *raw << "\"";
    error(node, join(parent, key), msg.str());
    return std::nullopt;
  }
  return v;
}

std::optional<bool> ConfigReader::getBool(const YAML::Node& map, const std::string& parent,
                                          const char* key) {
  YAML::Node node;
  auto raw = scalar(map, parent, key, false, &node);
  if (!raw) return std::nullopt;
  if (*raw == "true") return true;
  if (*raw == "false") return false;
  error(node, join(parent, key), "expected true or false, got \"" + *raw + "\"");
  return std::nullopt;
}

std::map<std::string, std::string> ConfigReader::getStringMap(const YAML::Node& map,
                                                              const std::string& parent,
                                                              const char* key,
                                                              const std::set<std::string>* keep) {
  std::map<std::string, std::string> out;
  const YAML::Node node = map[key];
  if (!node.IsDefined() || node.IsNull()) return out;
  const std::string field = join(parent, key);
  if (!node.IsMap()) {
    error(node, field, "expected a mapping of names to values");
    return out;
  }
  for (const auto& kv : node) {
    const std::string k = kv.first.as<std::string>("");
    if (!kv.second.IsScalar()) {
      error(kv.second, join(field, k), "expected a single value");
      continue;
    }
    if (auto v = expand(kv.second, join(field, k), kv.second.Scalar(), keep)) out[k] = *v;
  }
  return out;
}

std::vector<std::string> ConfigReader::getStringList(const YAML::Node& map,
                                                     const std::string& parent, const char* key) {
  std::vector<std::string> out;
  const YAML::Node node = map[key];
  if (!node.IsDefined() || node.IsNull()) return out;
  const std::string field = join(parent, key);
  if (!expectSequence(node, field)) return out;
  for (size_t i = 0; i < node.size(); ++i) {
    if (!node[i].IsScalar()) {
      error(node[i], index(field, i), "expected a single value");
      continue;
    }
    // ${NAME} expands in list items as in any other string.
    if (auto v = expand(node[i], index(field, i), node[i].Scalar())) out.push_back(*v);
  }
  return out;
}

}  // namespace greenlight
