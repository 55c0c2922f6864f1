// JWK import (RFC 7517, RFC 7518 §6, RFC 8037) and JWK Sets: keys the verifier in jwt.cpp uses.
#include <openssl/core_names.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "pix/security/base64url.hpp"
#include "pix/security/jose.hpp"
#include "pix/security/jwt.hpp"

namespace pix::security {
namespace {

using namespace jose;  // this component's own helpers (jose.hpp)

// ---- JWK import ------------------------------------------------------------------------------

constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 16384;
constexpr std::size_t kP256CoordinateBytes = 32;
constexpr std::size_t kEd25519KeyBytes = 32;

EvpPkeyPtr key_from_params(const char* type, const OSSL_PARAM* params, std::string& reason) {
  OpenSslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params)) <= 0) {
    reason = "key rejected by OpenSSL: " + take_openssl_error();
    return {};
  }
  EvpPkeyPtr key(raw);
  // fromdata takes the numbers as given; the public check refuses an EC point off the curve and
  // an RSA modulus or exponent that cannot be a real key.
  OpenSslPtr<EVP_PKEY_CTX> check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    reason = "public key check failed: " + take_openssl_error();
    return {};
  }
  return key;
}

std::optional<std::string> b64_member(const json::object& o, std::string_view name, std::string& reason) {
  std::string_view text;
  if (string_member(o, name, text) != Member::kOk) {
    reason = std::string(name) + " is missing or not a string";
    return std::nullopt;
  }
  auto bytes = base64url_decode(text);
  if (!bytes || bytes->empty()) reason = std::string(name) + " is not base64url";
  return bytes && !bytes->empty() ? bytes : std::nullopt;
}

EvpPkeyPtr import_rsa(const json::object& jwk, std::string& reason) {
  auto n = b64_member(jwk, "n", reason);
  if (!n) return {};
  auto e = b64_member(jwk, "e", reason);
  if (!e) return {};
  OpenSslPtr<BIGNUM> bn_n(BN_bin2bn(bytes_of(*n), static_cast<int>(n->size()), nullptr));
  OpenSslPtr<BIGNUM> bn_e(BN_bin2bn(bytes_of(*e), static_cast<int>(e->size()), nullptr));
  if (!bn_n || !bn_e) {
    reason = "out of memory";
    return {};
  }
  const int bits = BN_num_bits(bn_n.get());
  if (bits < kMinRsaBits || bits > kMaxRsaBits) {
    reason = "RSA key of " + std::to_string(bits) + " bits (accepted: 2048 to 16384)";
    return {};
  }
  OpenSslPtr<OSSL_PARAM_BLD> build(OSSL_PARAM_BLD_new());
  if (!build || !OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
    reason = "out of memory";
    return {};
  }
  OpenSslPtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(build.get()));
  if (!params) {
    reason = "out of memory";
    return {};
  }
  return key_from_params("RSA", params.get(), reason);
}

EvpPkeyPtr import_p256(const json::object& jwk, std::string& reason) {
  auto x = b64_member(jwk, "x", reason);
  if (!x) return {};
  auto y = b64_member(jwk, "y", reason);
  if (!y) return {};
  if (x->size() != kP256CoordinateBytes || y->size() != kP256CoordinateBytes) {
    reason = "P-256 x and y must be 32 bytes each";
    return {};
  }
  std::string point = "\x04" + *x + *y;  // SEC 1 uncompressed point
  std::array<char, 16> group{"P-256"};
  const std::array<OSSL_PARAM, 3> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group.data(), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  return key_from_params("EC", params.data(), reason);
}

EvpPkeyPtr import_ed25519(const json::object& jwk, std::string& reason) {
  auto x = b64_member(jwk, "x", reason);
  if (!x) return {};
  if (x->size() != kEd25519KeyBytes) {
    reason = "Ed25519 x must be 32 bytes";
    return {};
  }
  const std::array<OSSL_PARAM, 2> params = {
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, x->data(), x->size()), OSSL_PARAM_construct_end()};
  return key_from_params("ED25519", params.data(), reason);
}

std::optional<VerificationKey> import_jwk(const json::object& jwk, std::string& reason) {
  std::string_view kid, kty, use, crv, alg_name;
  if (string_member(jwk, "kid", kid) != Member::kOk || kid.empty()) {
    reason = "no kid";
    return std::nullopt;
  }
  if (string_member(jwk, "kty", kty) != Member::kOk) {
    reason = "no kty";
    return std::nullopt;
  }
  if (kty == "oct") {
    reason = "symmetric keys (kty oct) are not accepted";
    return std::nullopt;
  }
  if (const auto m = string_member(jwk, "use", use); m == Member::kWrongType || (m == Member::kOk && use != "sig")) {
    reason = "use is not sig";
    return std::nullopt;
  }
  if (const auto* ops = jwk.if_contains("key_ops")) {
    const auto* list = ops->if_array();
    if (list == nullptr || std::none_of(list->begin(), list->end(), [](const json::value& v) {
          return v.is_string() && v.get_string() == "verify";
        })) {
      reason = "key_ops does not allow verify";
      return std::nullopt;
    }
  }
  for (std::string_view secret : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    if (jwk.contains(secret)) {
      reason = "holds private key member " + std::string(secret) + "; publish only the public key";
      return std::nullopt;
    }
  }
  const Member crv_member = string_member(jwk, "crv", crv);
  VerificationKey key;
  key.kid = std::string(kid);
  if (kty == "RSA") {
    key.alg = Algorithm::kRs256;
    key.key = import_rsa(jwk, reason);
  } else if (kty == "EC") {
    if (crv_member != Member::kOk || crv != "P-256") {
      reason = "EC curve " + (crv_member == Member::kOk ? shown(crv) : std::string("missing")) + " (accepted: P-256)";
      return std::nullopt;
    }
    key.alg = Algorithm::kEs256;
    key.key = import_p256(jwk, reason);
  } else if (kty == "OKP") {
    if (crv_member != Member::kOk || crv != "Ed25519") {
      reason =
          "OKP curve " + (crv_member == Member::kOk ? shown(crv) : std::string("missing")) + " (accepted: Ed25519)";
      return std::nullopt;
    }
    key.alg = Algorithm::kEdDsa;
    key.key = import_ed25519(jwk, reason);
  } else {
    reason = "kty " + shown(kty) + " is not supported (RSA, EC, OKP)";
    return std::nullopt;
  }
  if (!key.key) return std::nullopt;
  if (const auto m = string_member(jwk, "alg", alg_name); m != Member::kAbsent) {
    if (m == Member::kWrongType || parse_algorithm(alg_name) != key.alg) {
      reason = "alg " + (m == Member::kOk ? shown(alg_name) : std::string("(not a string)")) + " is not " +
               std::string(to_string(key.alg)) + ", the only algorithm accepted for this key type";
      return std::nullopt;
    }
  }
  return key;
}

}  // namespace

const VerificationKey* KeySet::find(std::string_view kid) const noexcept {
  const auto it = keys_.find(kid);
  return it == keys_.end() ? nullptr : &it->second;
}

std::vector<std::string> KeySet::kids() const {
  std::vector<std::string> out;
  out.reserve(keys_.size());
  for (const auto& [kid, key] : keys_) out.push_back(kid);
  return out;
}

bool KeySet::add(VerificationKey key) {
  std::string kid = key.kid;
  return keys_.try_emplace(std::move(kid), std::move(key)).second;
}

JwksParse parse_jwks(std::string_view text) {
  JwksParse out;
  json::error_code ec;
  const json::value doc = json::parse(text, ec);
  if (ec) {
    out.error = "not JSON: " + ec.message();
    return out;
  }
  const auto* root = doc.if_object();
  const auto* keys = root == nullptr ? nullptr : root->if_contains("keys");
  if (keys == nullptr || !keys->is_array()) {
    out.error = "not a JWK Set: no keys array";
    return out;
  }
  KeySet set;
  std::size_t index = 0;
  for (const auto& item : keys->get_array()) {
    SkippedKey skipped{index++, {}, {}};
    const auto* jwk = item.if_object();
    if (jwk == nullptr) {
      skipped.reason = "not a JSON object";
      out.skipped.push_back(std::move(skipped));
      continue;
    }
    std::string_view kid;
    if (string_member(*jwk, "kid", kid) == Member::kOk) skipped.kid = shown(kid);
    auto key = import_jwk(*jwk, skipped.reason);
    if (key && !set.add(std::move(*key))) skipped.reason = "duplicate kid";
    if (!key || !skipped.reason.empty()) out.skipped.push_back(std::move(skipped));
  }
  out.keys = std::move(set);
  return out;
}

}  // namespace pix::security
