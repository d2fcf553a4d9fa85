// Reads YAML config with errors that say where: "file.yaml:12:5: probes[3].interval: expected a
// duration like "30s", got "30"". Collects every error instead of stopping at the first, rejects
// unknown keys, and expands ${NAME} from the environment (for secrets).
// Thread-compatible.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "greenlight/common/status.h"
#include "greenlight/common/time_source.h"

namespace greenlight {

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based
  std::string field;
  std::string message;
  std::string toString() const;
};

class ConfigErrors {
 public:
  void add(ConfigError e) { errors_.push_back(std::move(e)); }
  bool empty() const { return errors_.empty(); }
  size_t size() const { return errors_.size(); }
  const std::vector<ConfigError>& all() const { return errors_; }
  // One error a line.
  std::string format() const;

 private:
  std::vector<ConfigError> errors_;
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup processEnv();

class ConfigReader {
 public:
  ConfigReader(std::string file, ConfigErrors& errors, EnvLookup env = processEnv());

  // Parses a whole file; a syntax error is reported with its position and returns nullopt.
  std::optional<YAML::Node> loadFile();
  std::optional<YAML::Node> loadString(const std::string& text);

  const std::string& file() const { return file_; }
  ConfigErrors& errors() { return errors_; }
  void error(const YAML::Node& at, const std::string& field, const std::string& message);

  // True if `node` is a map whose keys are all in `allowed`; reports each unknown key.
  bool expectMap(const YAML::Node& node, const std::string& field,
                 const std::vector<std::string_view>& allowed);
  bool expectMap(const YAML::Node& node, const std::string& field,
                 std::initializer_list<std::string_view> allowed) {
    return expectMap(node, field, std::vector<std::string_view>(allowed));
  }
  bool expectSequence(const YAML::Node& node, const std::string& field);

  // Scalar getters: nullopt when absent (an error too when required) or invalid (error added).
  // `keep` lists ${names} that are not environment variables (left as they are).
  std::optional<std::string> getString(const YAML::Node& map, const std::string& parent,
                                       const char* key, bool required = false,
                                       const std::set<std::string>* keep = nullptr);
  std::optional<Duration> getDuration(const YAML::Node& map, const std::string& parent,
                                      const char* key, bool required = false);
  std::optional<int64_t> getInt(const YAML::Node& map, const std::string& parent, const char* key,
                                int64_t min, int64_t max, bool required = false);
  std::optional<double> getDouble(const YAML::Node& map, const std::string& parent,
                                  const char* key, double min, double max, bool required = false);
  std::optional<bool> getBool(const YAML::Node& map, const std::string& parent, const char* key);
  std::map<std::string, std::string> getStringMap(const YAML::Node& map, const std::string& parent,
                                                  const char* key,
                                                  const std::set<std::string>* keep = nullptr);
  std::vector<std::string> getStringList(const YAML::Node& map, const std::string& parent,
                                         const char* key);

  // Expands ${NAME} in one scalar. Unknown names not in `keep` are errors reported at `at`.
  std::optional<std::string> expand(const YAML::Node& at, const std::string& field,
                                    const std::string& text,
                                    const std::set<std::string>* keep = nullptr);
  // Values for ${secret:NAME} (from the decrypted secrets file), and the environment lookup.
  void setSecrets(std::map<std::string, std::string> secrets) { secrets_ = std::move(secrets); }
  const EnvLookup& env() const { return env_; }
  // "a.b" or "a[3]" style path joining.
  static std::string join(const std::string& parent, const std::string& key);
  static std::string index(const std::string& parent, size_t i);

 private:
  std::optional<std::string> scalar(const YAML::Node& map, const std::string& parent,
                                    const char* key, bool required, YAML::Node* out);
  std::string file_;
  ConfigErrors& errors_;
  EnvLookup env_;
  std::map<std::string, std::string> secrets_;
};

}  // namespace greenlight
