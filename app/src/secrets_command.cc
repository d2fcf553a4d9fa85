#include "greenlight/app/secrets_command.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <iostream>

#include "greenlight/common/crypto.h"
#include "greenlight/common/files.h"
#include "greenlight/common/sealed.h"

namespace greenlight::app {
namespace {

int fail(const std::string& message) {
  std::cerr << "greenlight secrets: " << message << "\n";
  return 1;
}

StatusOr<AesKey> keyOf(const SecretsArgs& a) {
  if (a.key_file.empty() == a.key_env.empty()) return InvalidArgument("give exactly one of --key-file or --key-env");
  return loadKey(KeySource{a.key_file, a.key_env}, processEnv());
}

}  // namespace

int secretsKeygen(const std::string& out) {
  struct stat st {};
  if (::stat(out.c_str(), &st) == 0) return fail(out + " exists: a key is never overwritten (rotate-key moves secrets to a new one)");
  if (Status s = writeFileAtomic(out, newKeyHex() + "\n", 0600); !s.ok()) return fail(s.message());
  std::cout << "wrote a new 256-bit key to " << out << " (mode 0600). Keep it out of the config and of backups of the secrets file.\n";
  return 0;
}

int secretsEncrypt(const SecretsArgs& a) {
  auto key = keyOf(a);
  if (!key.ok()) return fail(key.status().message());
  std::map<std::string, std::string> secrets;
  try {
    YAML::Node root = YAML::LoadFile(a.in);
    if (!root.IsMap()) return fail(a.in + ": expected a map of name: value");
    for (const auto& kv : root) {
      const std::string name = kv.first.as<std::string>();
      if (!kv.second.IsScalar()) return fail(a.in + ": " + name + ": expected a string value");
      secrets[name] = kv.second.Scalar();
    }
  } catch (const YAML::Exception& e) {
    return fail(a.in + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (Status s = writeSecretsFile(a.out, secrets, key.value()); !s.ok()) return fail(s.message());
  std::cout << "sealed " << secrets.size() << " secret(s) into " << a.out << " (AES-256-GCM). Delete the plain file: shred -u "
            << a.in << "\n";
  return 0;
}

int secretsDecrypt(const SecretsArgs& a) {
  auto key = keyOf(a);
  if (!key.ok()) return fail(key.status().message());
  auto secrets = readSecretsFile(a.in, key.value());
  if (!secrets.ok()) return fail(secrets.status().message());
  std::cout << secretsToYaml(secrets.value());
  return 0;
}

int secretsRotateKey(const SecretsArgs& a) {
  auto old_key = keyOf(a);
  if (!old_key.ok()) return fail(old_key.status().message());
  if (a.new_key_file.empty()) return fail("--new-key-file is required (make one with `greenlight secrets keygen`)");
  auto new_key = loadKeyFile(a.new_key_file);
  if (!new_key.ok()) return fail(new_key.status().message());
  auto secrets = readSecretsFile(a.in, old_key.value());
  if (!secrets.ok()) return fail(secrets.status().message());
  if (Status s = writeSecretsFile(a.in, secrets.value(), new_key.value()); !s.ok()) return fail(s.message());
  std::cout << "re-sealed " << secrets.value().size() << " secret(s) in " << a.in << " with " << a.new_key_file
            << "; point secrets.key_file at it, then retire the old key\n";
  return 0;
}

int tokenNew(const std::string& name, const std::string& role) {
  const std::string raw = randomBytes(24);
  const std::string token = toHex(reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
  std::cout << "token (give it to " << name << "; it is not stored anywhere):\n  " << token << "\n"
            << "config entry (admin.tokens):\n  - {name: " << name << ", role: " << role << ", token_hash: \""
            << hashToken(token) << "\"}\n";
  return 0;
}

int tokenHash(std::istream& in) {
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16) return fail("a token must be at least 16 characters long (greenlight token new makes one)");
  std::cout << hashToken(token) << "\n";
  return 0;
}

}  // namespace greenlight::app
