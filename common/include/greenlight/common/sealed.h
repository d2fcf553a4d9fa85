// Data at rest, sealed with AES-256-GCM (OpenSSL EVP): secrets files and state files. A sealed
// blob is "GLSEAL1" | 12-byte random nonce | ciphertext | 16-byte tag; the purpose ("secrets",
// "state:rollouts" …) is authenticated too, so one kind of file cannot stand in for another.
// Opening a blob that was changed, cut short or sealed with another key fails as a whole:
// nothing is half-read. Keys come from a key file (0600, 64 hex digits) or an environment
// variable, never from the config itself. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "greenlight/common/config_reader.h"
#include "greenlight/common/status.h"

namespace greenlight {

using AesKey = std::array<uint8_t, 32>;

// A new random key, as 64 hex digits.
std::string newKeyHex();
// Parses 64 hex digits (surrounding whitespace allowed).
StatusOr<AesKey> keyFromHex(std::string_view hex);
// Reads a key file; refuses one that others than its owner can read.
StatusOr<AesKey> loadKeyFile(const std::string& path);

bool isSealed(std::string_view data);
std::string seal(const AesKey& key, std::string_view plaintext, std::string_view purpose);
StatusOr<std::string> unseal(const AesKey& key, std::string_view sealed, std::string_view purpose);

// Where a process's key comes from: `key_file`, else the environment variable `key_env`.
struct KeySource {
  std::string key_file;
  std::string key_env;
  bool configured() const { return !key_file.empty() || !key_env.empty(); }
};
StatusOr<AesKey> loadKey(const KeySource& source, const EnvLookup& env);

// A map of name -> value as the YAML the secrets file holds inside (values double-quoted).
std::string secretsToYaml(const std::map<std::string, std::string>& secrets);

// The secrets file: a YAML map of name -> value, sealed with purpose "secrets".
StatusOr<std::map<std::string, std::string>> readSecretsFile(const std::string& path, const AesKey& key);
Status writeSecretsFile(const std::string& path, const std::map<std::string, std::string>& secrets, const AesKey& key);

// The `secrets:` section of a config ({file, key_file, key_env}): decrypts the file and hands
// its values to the reader, so `${secret:NAME}` expands anywhere after it. Errors go to the
// reader and never contain a secret value.
void loadSecretsSection(ConfigReader& r, const YAML::Node& node, const std::string& field);

// State files (rollout state, alert state and outbox, the proxy's routing table): written
// atomically, and sealed with purpose "state:NAME" when `key` is set. Reading fails with the
// file's name when it was changed, when it is sealed but no key is configured, or when it is
// plain but a key is (a plain file slipped in must not be trusted). A missing file: NotFound.
Status writeStateFile(const std::string& path, const std::string& content, const std::optional<AesKey>& key,
                      std::string_view name);
StatusOr<std::string> readStateFile(const std::string& path, const std::optional<AesKey>& key, std::string_view name);

// The `state_encryption:` section ({key_file} or {key_env}): the key, or nullopt when absent.
std::optional<AesKey> parseStateEncryption(ConfigReader& r, const YAML::Node& node, const std::string& field);

}  // namespace greenlight
