#include "pix/security/decision_signature.hpp"

#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "pix/security/base64url.hpp"
#include "pix/util/random_id.hpp"

namespace pix::security {
namespace {

namespace json = boost::json;

constexpr std::size_t kMinSecretBytes = 32;
constexpr std::string_view kVersion = "v1";

std::string member(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || !v->is_string() || v->as_string().empty()) {
    throw std::runtime_error("decision key: \"" + std::string(name) + "\" must be a non-empty string");
  }
  return std::string(v->as_string());
}

std::string hmac_sha256(std::string_view secret, std::string_view input) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac.data(), &length) == nullptr) {
    throw std::runtime_error("HMAC-SHA-256 failed");
  }
  return std::string(reinterpret_cast<const char*>(mac.data()), length);
}

void append_field(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out.append(field);
}

}  // namespace

DecisionKey parse_decision_key(std::string_view json_text) {
  json::error_code ec;
  const auto doc = json::parse(json_text, ec);
  if (ec || !doc.is_object()) throw std::runtime_error("decision key: not a JSON object");
  const auto& o = doc.as_object();
  if (member(o, "kty") != "oct") throw std::runtime_error("decision key: \"kty\" must be \"oct\"");
  if (member(o, "alg") != "HS256") throw std::runtime_error("decision key: \"alg\" must be \"HS256\"");
  DecisionKey key;
  key.kid = member(o, "kid");
  key.stage = member(o, "pix_stage");
  auto secret = base64url_decode(member(o, "k"));
  if (!secret) throw std::runtime_error("decision key: \"k\" is not base64url");
  if (secret->size() < kMinSecretBytes) {
    throw std::runtime_error("decision key: \"k\" holds " + std::to_string(secret->size()) +
                             " bytes; at least 32 are required");
  }
  key.secret = std::move(*secret);
  return key;
}

DecisionKey load_decision_key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw std::runtime_error("decision key " + path + ": cannot be read");
  // Group read is how Kubernetes (fsGroup) and ACL-based bind mounts share a file with the
  // process's user; anyone else reading it is a mistake worth saying.
  if ((st.st_mode & 007) != 0) {
    spdlog::warn("decision key {}: any user may read it (mode {:o}); whoever reads it can sign decisions", path,
                 st.st_mode & 0777);
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) throw std::runtime_error("decision key " + path + ": cannot be read");
  try {
    return parse_decision_key(text.str());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

std::string generate_decision_key_json(const std::string& stage) {
  std::string secret(kMinSecretBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), static_cast<int>(secret.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  json::object o;
  o["kty"] = "oct";
  o["alg"] = "HS256";
  o["kid"] = stage + "-" + util::random_hex(4);
  o["k"] = base64url_encode(secret);
  o["pix_stage"] = stage;
  return json::serialize(o) + "\n";
}

std::string signing_input(std::string_view topic, std::string_view key, std::string_view event_id,
                          std::string_view value) {
  std::string out;
  out.reserve(topic.size() + key.size() + event_id.size() + value.size() + 32);
  out.append(kVersion);
  out += '\n';
  append_field(out, topic);
  append_field(out, key);
  append_field(out, event_id);
  append_field(out, value);
  return out;
}

std::string sign_decision(const DecisionKey& key, std::string_view input) {
  return std::string(kVersion) + ";kid=" + key.kid + ";sig=" + base64url_encode(hmac_sha256(key.secret, input));
}

std::string_view to_string(SignatureError e) noexcept {
  switch (e) {
    case SignatureError::kMissing:
      return "missing";
    case SignatureError::kMalformed:
      return "malformed";
    case SignatureError::kUnknownKey:
      return "unknown_key";
    case SignatureError::kWrongStage:
      return "wrong_stage";
    case SignatureError::kBadSignature:
      return "bad_signature";
  }
  return "unknown";
}

DecisionVerifier::DecisionVerifier(std::vector<DecisionKey> trusted, std::string required_stage)
    : required_stage_(std::move(required_stage)) {
  for (auto& k : trusted) {
    const std::string kid = k.kid;
    if (!keys_.emplace(kid, std::move(k)).second) throw std::runtime_error("decision keys: kid " + kid + " twice");
  }
}

std::optional<SignatureError> DecisionVerifier::verify(std::string_view header, std::string_view input) const {
  if (header.empty()) return SignatureError::kMissing;
  // v1;kid=<kid>;sig=<base64url>
  constexpr std::string_view kKid = ";kid=", kSig = ";sig=";
  if (header.substr(0, kVersion.size()) != kVersion) return SignatureError::kMalformed;
  std::string_view rest = header.substr(kVersion.size());
  if (rest.substr(0, kKid.size()) != kKid) return SignatureError::kMalformed;
  rest.remove_prefix(kKid.size());
  const auto sig_at = rest.find(kSig);
  if (sig_at == std::string_view::npos || sig_at == 0) return SignatureError::kMalformed;
  const std::string_view kid = rest.substr(0, sig_at);
  const auto mac = base64url_decode(rest.substr(sig_at + kSig.size()));
  if (!mac || mac->size() != 32) return SignatureError::kMalformed;
  const auto it = keys_.find(kid);
  if (it == keys_.end()) return SignatureError::kUnknownKey;
  if (it->second.stage != required_stage_) return SignatureError::kWrongStage;
  const std::string expected = hmac_sha256(it->second.secret, input);
  if (CRYPTO_memcmp(expected.data(), mac->data(), expected.size()) != 0) return SignatureError::kBadSignature;
  return std::nullopt;
}

}  // namespace pix::security
