// `greenlight secrets keygen|encrypt|decrypt|rotate-key`: the sealed secrets file that configs
// reference as ${secret:NAME}. Each returns the process exit code and prints errors to stderr.
#pragma once

#include <istream>
#include <string>

namespace greenlight::app {

struct SecretsArgs {
  std::string key_file;      // the key, or
  std::string key_env;       // an environment variable holding it
  std::string new_key_file;  // rotate-key: the key to seal with from now on
  std::string in;
  std::string out;
};

int secretsKeygen(const std::string& out);
int secretsEncrypt(const SecretsArgs& args);  // plain YAML map (in) -> sealed file (out)
int secretsDecrypt(const SecretsArgs& args);  // sealed file (in) -> YAML on standard output
int secretsRotateKey(const SecretsArgs& args);  // sealed file (in) re-sealed with the new key, in place

// `greenlight token new|hash`: a random token (printed once) with its salted config entry, or
// the salted hash of a token read from `in`.
int tokenNew(const std::string& name, const std::string& role);
int tokenHash(std::istream& in);

}  // namespace greenlight::app
