#include "greenlight/common/sealed.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include "greenlight/common/crypto.h"
#include "greenlight/common/files.h"

namespace greenlight {
namespace {

constexpr std::string_view kMagic = "GLSEAL1";
constexpr size_t kNonce = 12, kTag = 16;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

CipherCtx newCtx() { return CipherCtx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free); }

// `key_file` or `key_env` of a config section, loaded; errors go to the reader.
std::optional<AesKey> keyOfSection(ConfigReader& r, const YAML::Node& node, const std::string& field) {
  KeySource source;
  source.key_file = r.getString(node, field, "key_file").value_or("");
  source.key_env = r.getString(node, field, "key_env").value_or("");
  if (source.key_file.empty() == source.key_env.empty()) {
    r.error(node, field, "give exactly one of key_file or key_env (the key never goes in the config)");
    return std::nullopt;
  }
  auto key = loadKey(source, r.env());
  if (!key.ok()) {
    r.error(node, field, key.status().message());
    return std::nullopt;
  }
  return key.value();
}

std::string aad(std::string_view purpose) { return std::string(kMagic) + "|" + std::string(purpose); }

}  // namespace

std::string newKeyHex() {
  AesKey k;
  RAND_bytes(k.data(), int(k.size()));
  return toHex(k.data(), k.size());
}

StatusOr<AesKey> keyFromHex(std::string_view hex) {
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back()))) hex.remove_suffix(1);
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.front()))) hex.remove_prefix(1);
  Sha256Digest d;  // same shape: 32 bytes from 64 hex digits
  if (!sha256FromHex(hex, &d)) return InvalidArgument("a key is 64 hex digits (make one with `greenlight secrets keygen`)");
  AesKey k;
  std::copy(d.begin(), d.end(), k.begin());
  return k;
}

StatusOr<AesKey> loadKeyFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return NotFound("key file " + path + ": cannot read it");
  if (st.st_mode & 077) return InvalidArgument("key file " + path + " can be read by others than its owner: chmod 600 " + path);
  auto text = readWholeFile(path);
  if (!text.ok()) return text.status();
  auto key = keyFromHex(text.value());
  if (!key.ok()) return InvalidArgument("key file " + path + ": " + key.status().message());
  return key;
}

StatusOr<AesKey> loadKey(const KeySource& source, const EnvLookup& env) {
  if (!source.key_file.empty()) return loadKeyFile(source.key_file);
  if (!source.key_env.empty()) {
    auto v = env(source.key_env);
    if (!v || v->empty()) return NotFound("environment variable " + source.key_env + " (the key) is not set");
    auto key = keyFromHex(*v);
    if (!key.ok()) return InvalidArgument("environment variable " + source.key_env + ": " + key.status().message());
    return key;
  }
  return InvalidArgument("no key: give key_file or key_env");
}

bool isSealed(std::string_view data) { return data.substr(0, kMagic.size()) == kMagic; }

std::string seal(const AesKey& key, std::string_view plaintext, std::string_view purpose) {
  std::string out(kMagic);
  std::array<uint8_t, kNonce> nonce;
  RAND_bytes(nonce.data(), int(nonce.size()));
  out.append(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  const size_t head = out.size();
  out.resize(head + plaintext.size() + kTag);
  auto ctx = newCtx();
  int len = 0;
  const std::string a = aad(purpose);
  EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, int(kNonce), nullptr);
  EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce.data());
  EVP_EncryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const uint8_t*>(a.data()), int(a.size()));
  auto* dst = reinterpret_cast<uint8_t*>(out.data() + head);
  EVP_EncryptUpdate(ctx.get(), dst, &len, reinterpret_cast<const uint8_t*>(plaintext.data()), int(plaintext.size()));
  int tail = 0;
  EVP_EncryptFinal_ex(ctx.get(), dst + len, &tail);
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, int(kTag), dst + plaintext.size());
  return out;
}

StatusOr<std::string> unseal(const AesKey& key, std::string_view sealed, std::string_view purpose) {
  if (!isSealed(sealed)) return InvalidArgument("not a sealed file (no GLSEAL1 header)");
  if (sealed.size() < kMagic.size() + kNonce + kTag) return InvalidArgument("sealed data is cut short");
  const auto* nonce = reinterpret_cast<const uint8_t*>(sealed.data() + kMagic.size());
  const std::string_view body = sealed.substr(kMagic.size() + kNonce, sealed.size() - kMagic.size() - kNonce - kTag);
  std::array<uint8_t, kTag> tag;
  std::memcpy(tag.data(), sealed.data() + sealed.size() - kTag, kTag);
  std::string out(body.size(), '\0');
  auto ctx = newCtx();
  int len = 0;
  const std::string a = aad(purpose);
  EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, int(kNonce), nullptr);
  EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce);
  EVP_DecryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const uint8_t*>(a.data()), int(a.size()));
  EVP_DecryptUpdate(ctx.get(), reinterpret_cast<uint8_t*>(out.data()), &len, reinterpret_cast<const uint8_t*>(body.data()),
                    int(body.size()));
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, int(kTag), tag.data());
  int tail = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<uint8_t*>(out.data()) + len, &tail) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return InvalidArgument("authentication failed: the data was changed, or sealed with another key or for another purpose");
  }
  return out;
}

std::string secretsToYaml(const std::map<std::string, std::string>& secrets) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  for (const auto& [k, v] : secrets) e << YAML::Key << k << YAML::Value << YAML::DoubleQuoted << v;
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

StatusOr<std::map<std::string, std::string>> readSecretsFile(const std::string& path, const AesKey& key) {
  auto data = readWholeFile(path);
  if (!data.ok()) return data.status();
  auto plain = unseal(key, data.value(), "secrets");
  if (!plain.ok()) return InvalidArgument("secrets file " + path + ": " + plain.status().message());
  std::map<std::string, std::string> out;
  try {
    YAML::Node root = YAML::Load(plain.value());
    if (!root.IsMap()) return InvalidArgument("secrets file " + path + ": expected a map of name: value");
    for (const auto& kv : root) {
      if (!kv.second.IsScalar()) return InvalidArgument("secrets file " + path + ": " + kv.first.as<std::string>() + " is not a string");
      out[kv.first.as<std::string>()] = kv.second.Scalar();
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument("secrets file " + path + ": not YAML inside (line " + std::to_string(e.mark.line + 1) + ")");
  }
  OPENSSL_cleanse(plain.value().data(), plain.value().size());
  return out;
}

Status writeSecretsFile(const std::string& path, const std::map<std::string, std::string>& secrets, const AesKey& key) {
  std::string plain = secretsToYaml(secrets);
  const std::string sealed = seal(key, plain, "secrets");
  OPENSSL_cleanse(plain.data(), plain.size());
  return writeFileAtomic(path, sealed, 0600);
}

void loadSecretsSection(ConfigReader& r, const YAML::Node& node, const std::string& field) {
  if (!node.IsDefined() || node.IsNull()) return;
  if (!r.expectMap(node, field, {"file", "key_file", "key_env"})) return;
  auto file = r.getString(node, field, "file", true);
  auto key = keyOfSection(r, node, field);
  if (!file || !key) return;
  std::string path = *file;
  if (!path.empty() && path[0] != '/') path = (std::filesystem::path(r.file()).parent_path() / path).string();
  auto secrets = readSecretsFile(path, *key);
  if (!secrets.ok()) {
    r.error(node["file"], ConfigReader::join(field, "file"), secrets.status().message());
    return;
  }
  r.setSecrets(std::move(secrets.value()));
}

Status writeStateFile(const std::string& path, const std::string& content, const std::optional<AesKey>& key,
                      std::string_view name) {
  if (!key) return writeFileAtomic(path, content);
  return writeFileAtomic(path, seal(*key, content, "state:" + std::string(name)));
}

StatusOr<std::string> readStateFile(const std::string& path, const std::optional<AesKey>& key, std::string_view name) {
  if (!std::filesystem::exists(path)) return NotFound(path + " does not exist");
  auto data = readWholeFile(path);
  if (!data.ok()) return data.status();
  const bool sealed = isSealed(data.value());
  if (!key && sealed) return InvalidArgument("state file " + path + " is encrypted: configure state_encryption with its key");
  if (key && !sealed) {
    return InvalidArgument("state file " + path + " is not encrypted but state_encryption is on: refusing an unauthenticated "
                           "file (move it away to start without it)");
  }
  if (!key) return data;
  auto plain = unseal(*key, data.value(), "state:" + std::string(name));
  if (!plain.ok()) return InvalidArgument("state file " + path + ": " + plain.status().message());
  return plain;
}

std::optional<AesKey> parseStateEncryption(ConfigReader& r, const YAML::Node& node, const std::string& field) {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  if (!r.expectMap(node, field, {"key_file", "key_env"})) return std::nullopt;
  return keyOfSection(r, node, field);
}

}  // namespace greenlight
