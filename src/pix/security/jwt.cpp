#include "pix/security/jwt.hpp"

#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <stdexcept>

#include "pix/http/client.hpp"
#include "pix/security/base64url.hpp"

namespace pix::security {

void detail::EvpPkeyFree::operator()(EVP_PKEY* key) const noexcept {
  EVP_PKEY_free(key);
}

namespace {

namespace json = boost::json;
using Clock = std::chrono::system_clock;

// ---- OpenSSL holders -------------------------------------------------------------------------

struct OpenSslFree {
  void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
  void operator()(BIGNUM* p) const noexcept { BN_free(p); }
  void operator()(OSSL_PARAM_BLD* p) const noexcept { OSSL_PARAM_BLD_free(p); }
  void operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
  void operator()(ECDSA_SIG* p) const noexcept { ECDSA_SIG_free(p); }
};
template <typename T>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree>;

// OpenSSL leaves reasons in a per-thread queue; take the first and empty it so that one failure
// never shows up as the reason of a later, unrelated one.
std::string take_openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no reason given";
  std::array<char, 256> text{};
  ERR_error_string_n(code, text.data(), text.size());
  return text.data();
}

const unsigned char* bytes_of(std::string_view s) noexcept {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// ---- JSON member access ----------------------------------------------------------------------

enum class Member { kAbsent, kWrongType, kOk };

Member string_member(const json::object& o, std::string_view name, std::string_view& out) {
  const auto* v = o.if_contains(name);
  if (v == nullptr) return Member::kAbsent;
  const auto* s = v->if_string();
  if (s == nullptr) return Member::kWrongType;
  out = *s;
  return Member::kOk;
}

// What may be echoed in a detail: an alg, kid, typ or iss that is short and made of harmless
// characters. Anything else is replaced, so a detail never carries quotes, control characters or
// a blob long enough to be part of a token.
std::string shown(std::string_view s) {
  constexpr std::size_t kMaxShown = 80;
  const bool safe = !s.empty() && s.size() <= kMaxShown && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("._-+:/").find(c) != std::string_view::npos;
  });
  return safe ? std::string(s) : std::string("(not shown)");
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// ---- JWK import ------------------------------------------------------------------------------

constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 16384;
constexpr std::size_t kP256CoordinateBytes = 32;
constexpr std::size_t kEd25519KeyBytes = 32;
constexpr std::size_t kEs256SignatureBytes = 64;
constexpr std::size_t kEd25519SignatureBytes = 64;

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

// ---- signatures ------------------------------------------------------------------------------

// JWS carries ECDSA signatures as fixed-size R||S (RFC 7518 §3.4); OpenSSL wants DER.
std::optional<std::string> es256_to_der(std::string_view raw) {
  if (raw.size() != kEs256SignatureBytes) return std::nullopt;
  constexpr int kHalf = static_cast<int>(kEs256SignatureBytes / 2);
  OpenSslPtr<ECDSA_SIG> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(bytes_of(raw), kHalf, nullptr);
  BIGNUM* s = BN_bin2bn(bytes_of(raw) + kHalf, kHalf, nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  const int size = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (size <= 0) return std::nullopt;
  std::string der(static_cast<std::size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != size) return std::nullopt;
  return der;
}

// Empty on success, else the detail.
std::string check_signature(const VerificationKey& key, std::string_view signing_input, std::string_view signature) {
  std::string der;
  const EVP_MD* md = EVP_sha256();
  switch (key.alg) {
    case Algorithm::kEs256: {
      auto converted = es256_to_der(signature);
      if (!converted) return "ES256 signature must be 64 bytes";
      der = std::move(*converted);
      signature = der;
      break;
    }
    case Algorithm::kRs256:
      if (signature.size() != static_cast<std::size_t>(EVP_PKEY_get_size(key.key.get()))) {
        return "RS256 signature must be " + std::to_string(EVP_PKEY_get_size(key.key.get())) + " bytes";
      }
      break;
    case Algorithm::kEdDsa:
      if (signature.size() != kEd25519SignatureBytes) return "EdDSA signature must be 64 bytes";
      md = nullptr;  // Ed25519 hashes internally
      break;
  }
  OpenSslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  const bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.key.get()) == 1 &&
                  EVP_DigestVerify(ctx.get(), bytes_of(signature), signature.size(), bytes_of(signing_input),
                                   signing_input.size()) == 1;
  if (ok) return {};
  ERR_clear_error();
  return "signature does not verify";
}

// ---- claims ----------------------------------------------------------------------------------

// NumericDates beyond this (2200-01-01) are refused: they would overflow system_clock's
// nanoseconds, and no real token is meant to live that long.
constexpr double kMaxNumericDate = 7'258'118'400.0;

Member numeric_date(const json::object& o, std::string_view name, Clock::time_point& out) {
  const auto* v = o.if_contains(name);
  if (v == nullptr) return Member::kAbsent;
  const auto max = static_cast<std::int64_t>(kMaxNumericDate);
  if (v->is_int64() || v->is_uint64()) {
    // Integers are converted exactly; only a fractional NumericDate goes through double.
    if (v->is_uint64() ? v->get_uint64() > static_cast<std::uint64_t>(max)
                       : (v->get_int64() < 0 || v->get_int64() > max)) {
      return Member::kWrongType;
    }
    const std::int64_t seconds = v->is_uint64() ? static_cast<std::int64_t>(v->get_uint64()) : v->get_int64();
    out = Clock::time_point(std::chrono::seconds(seconds));
    return Member::kOk;
  }
  if (!v->is_double()) return Member::kWrongType;
  const double seconds = v->get_double();
  if (!std::isfinite(seconds) || seconds < 0 || seconds > kMaxNumericDate) return Member::kWrongType;
  const double whole = std::floor(seconds);
  out = Clock::time_point(std::chrono::seconds(static_cast<std::int64_t>(whole))) +
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds - whole));
  return Member::kOk;
}

// `scope` is a space-separated string (RFC 8693 §4.2); `scp` is an array in some IdPs and a
// string in others (Azure AD), so both forms are read for both names.
bool append_scopes(const json::object& o, std::string_view name, std::vector<std::string>& out) {
  const auto* v = o.if_contains(name);
  if (v == nullptr) return true;
  auto split = [&out](std::string_view s) {
    while (!s.empty()) {
      const auto end = s.find(' ');
      if (end != 0) out.emplace_back(s.substr(0, end));
      if (end == std::string_view::npos) break;
      s.remove_prefix(end + 1);
    }
  };
  if (const auto* s = v->if_string()) {
    split(*s);
    return true;
  }
  const auto* list = v->if_array();
  if (list == nullptr) return false;
  for (const auto& item : *list) {
    if (!item.is_string()) return false;
    out.emplace_back(item.get_string());
  }
  return true;
}

VerifyResult refuse(VerifyError error, std::string detail) {
  return VerifyResult{nullptr, error, std::move(detail)};
}

std::optional<json::object> parse_object(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
}

std::optional<json::object> decode_object(std::string_view segment) {
  const auto bytes = base64url_decode(segment);
  return bytes ? parse_object(*bytes) : std::nullopt;
}

// verify() with, for the cache, the time from which the token is valid (nbf - leeway).
VerifyResult verify_token(std::string_view token, const KeySet& keys, const VerifyPolicy& policy, Clock::time_point now,
                          Clock::time_point& valid_from) {
  using VE = VerifyError;
  if (token.size() > policy.max_token_bytes) {
    return refuse(VE::kMalformed, "token is longer than " + std::to_string(policy.max_token_bytes) + " bytes");
  }
  const std::size_t segments = static_cast<std::size_t>(std::count(token.begin(), token.end(), '.')) + 1;
  if (segments != 3) {
    return refuse(VE::kMalformed, "token has " + std::to_string(segments) + " segments, a JWS has 3");
  }
  const auto first_dot = token.find('.');
  const auto second_dot = token.find('.', first_dot + 1);
  const std::string_view header_b64 = token.substr(0, first_dot);
  const std::string_view payload_b64 = token.substr(first_dot + 1, second_dot - first_dot - 1);
  const std::string_view signature_b64 = token.substr(second_dot + 1);

  // ---- header: everything that decides which key and algorithm, before any crypto
  const auto header = decode_object(header_b64);
  if (!header) return refuse(VE::kMalformed, "header is not base64url JSON object");
  std::string_view alg_name, typ, kid;
  switch (string_member(*header, "alg", alg_name)) {
    case Member::kAbsent:
      return refuse(VE::kMalformed, "header has no alg");
    case Member::kWrongType:
      return refuse(VE::kMalformed, "alg is not a string");
    case Member::kOk:
      break;
  }
  const auto alg = parse_algorithm(alg_name);
  if (!alg) return refuse(VE::kUnsupportedAlgorithm, "alg " + shown(alg_name) + " is not accepted");
  // RFC 7515 §4.1.11: a recipient must refuse extensions it does not understand; we know none.
  if (header->contains("crit")) return refuse(VE::kMalformed, "crit header extensions are not supported");
  if (const auto m = string_member(*header, "typ", typ); m != Member::kAbsent) {
    // RFC 7515 §4.1.9: compared case-insensitively, with or without the application/ prefix.
    if (typ.size() > 12 && iequals(typ.substr(0, 12), "application/")) typ.remove_prefix(12);
    if (m == Member::kWrongType || !(iequals(typ, "JWT") || iequals(typ, "at+jwt"))) {
      return refuse(VE::kMalformed, "typ is not JWT or at+jwt");
    }
  }
  switch (string_member(*header, "kid", kid)) {
    case Member::kAbsent:
      return refuse(VE::kUnknownKey, "header has no kid");
    case Member::kWrongType:
      return refuse(VE::kMalformed, "kid is not a string");
    case Member::kOk:
      break;
  }
  const VerificationKey* key = keys.find(kid);
  if (key == nullptr) return refuse(VE::kUnknownKey, "unknown kid " + shown(kid));
  if (key->alg != *alg) {
    return refuse(VE::kUnsupportedAlgorithm, "alg " + std::string(to_string(*alg)) + " does not match key " +
                                                 shown(kid) + " (" + std::string(to_string(key->alg)) + ")");
  }

  // ---- signature, over the segments exactly as received. The payload's encoding is checked
  // first (cheap, and a clearer answer than "bad signature"); its JSON is read only once signed.
  const auto payload_bytes = base64url_decode(payload_b64);
  if (!payload_bytes) return refuse(VE::kMalformed, "payload is not base64url");
  const auto signature = base64url_decode(signature_b64);
  if (!signature) return refuse(VE::kMalformed, "signature is not base64url");
  if (auto failure = check_signature(*key, token.substr(0, second_dot), *signature); !failure.empty()) {
    return refuse(VE::kBadSignature, std::move(failure));
  }

  // ---- claims: trusted from here on, but still checked for shape
  const auto payload = parse_object(*payload_bytes);
  if (!payload) return refuse(VE::kMalformed, "payload is not a JSON object");
  Claims claims;
  Clock::time_point exp, nbf, iat;
  switch (numeric_date(*payload, "exp", exp)) {
    case Member::kAbsent:
      return refuse(VE::kMissingClaim, "exp claim is required");
    case Member::kWrongType:
      return refuse(VE::kMalformed, "exp is not a NumericDate");
    case Member::kOk:
      break;
  }
  const Member nbf_member = numeric_date(*payload, "nbf", nbf);
  if (nbf_member == Member::kWrongType) return refuse(VE::kMalformed, "nbf is not a NumericDate");
  if (numeric_date(*payload, "iat", iat) == Member::kWrongType) {
    return refuse(VE::kMalformed, "iat is not a NumericDate");
  }
  std::string_view text;
  switch (string_member(*payload, "sub", text)) {
    case Member::kAbsent:
      return refuse(VE::kMissingClaim, "sub claim is required");
    case Member::kWrongType:
      return refuse(VE::kMalformed, "sub is not a string");
    case Member::kOk:
      if (text.empty()) return refuse(VE::kMissingClaim, "sub claim is empty");
      claims.subject = std::string(text);
  }
  switch (string_member(*payload, "iss", text)) {
    case Member::kAbsent:
      return refuse(VE::kMissingClaim, "iss claim is required");
    case Member::kWrongType:
      return refuse(VE::kMalformed, "iss is not a string");
    case Member::kOk:
      // An unconfigured issuer fails closed: it must not match a token whose iss is "".
      if (policy.issuer.empty() || text != policy.issuer) {
        return refuse(VE::kWrongIssuer, "iss " + shown(text) + " is not the accepted issuer");
      }
      claims.issuer = std::string(text);
  }
  const auto* aud = payload->if_contains("aud");
  if (aud == nullptr) return refuse(VE::kMissingClaim, "aud claim is required");
  auto accepted = [&policy](std::string_view a) {
    return std::find(policy.audiences.begin(), policy.audiences.end(), a) != policy.audiences.end();
  };
  bool audience_ok = false;
  if (const auto* one = aud->if_string()) {
    audience_ok = accepted(*one);
  } else if (const auto* list = aud->if_array()) {
    for (const auto& a : *list) {
      if (!a.is_string()) return refuse(VE::kMalformed, "aud is not a string or array of strings");
      audience_ok = audience_ok || accepted(a.get_string());
    }
  } else {
    return refuse(VE::kMalformed, "aud is not a string or array of strings");
  }
  if (!audience_ok) return refuse(VE::kWrongAudience, "aud does not name this service");
  if (!append_scopes(*payload, "scope", claims.scopes) || !append_scopes(*payload, "scp", claims.scopes)) {
    return refuse(VE::kMalformed, "scope or scp is not a string or array of strings");
  }
  const auto optional_string = [&payload](std::string_view name, std::string& out) {
    std::string_view value;
    const Member m = string_member(*payload, name, value);
    if (m == Member::kOk) out = std::string(value);
    return m != Member::kWrongType;
  };
  if (!optional_string("jti", claims.token_id)) return refuse(VE::kMalformed, "jti is not a string");
  if (!optional_string("client_id", claims.client_id) || !optional_string("azp", claims.client_id)) {
    return refuse(VE::kMalformed, "azp or client_id is not a string");
  }

  // ---- time, last: an expired token from a wrong issuer is reported as from a wrong issuer
  if (now >= exp + policy.leeway) {
    const auto ago = std::chrono::duration_cast<std::chrono::seconds>(now - exp).count();
    return refuse(VE::kExpired, "token expired " + std::to_string(ago) + " s ago");
  }
  if (nbf_member == Member::kOk && now + policy.leeway < nbf) {
    const auto wait = std::chrono::duration_cast<std::chrono::seconds>(nbf - now).count();
    return refuse(VE::kNotYetValid, "token is not valid for another " + std::to_string(wait) + " s");
  }
  valid_from = nbf_member == Member::kOk ? nbf - policy.leeway : Clock::time_point{};
  claims.expires_at = exp;
  return VerifyResult{std::make_shared<const Claims>(std::move(claims)), VE::kMalformed, {}};
}

// ---- JWKS documents --------------------------------------------------------------------------

// One GET of a JWKS document. Empty on success, else why.
std::string http_get(const http::Url& url, const std::string& ca_file, std::chrono::seconds timeout,
                     std::size_t max_bytes, std::string& body) {
  http::ClientRequest request;
  request.url = url;
  request.headers = {{"Accept", "application/jwk-set+json, application/json"}};
  request.ca_file = ca_file;
  request.timeout = timeout;
  request.max_response_bytes = max_bytes;
  auto response = http::send_request(request);
  if (!response.error.empty()) return response.error;
  if (response.status != 200) {
    return "HTTP " + std::to_string(response.status) + " from " + url.host + ":" + std::to_string(url.port);
  }
  body = std::move(response.body);
  return {};
}

// The JWKS URL, or throws saying what is wrong with it.
http::Url jwks_url(std::string_view location) {
  std::string error;
  auto url = http::parse_url(location, error);
  if (!url) throw std::runtime_error("JWKS URL: " + error);
  return *url;
}

std::string read_file(const std::string& path, std::size_t max_bytes, std::string& contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open " + path;
  contents.assign(max_bytes + 1, '\0');
  in.read(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (in.bad()) return "cannot read " + path;
  contents.resize(static_cast<std::size_t>(in.gcount()));
  if (contents.size() > max_bytes) return path + " is larger than " + std::to_string(max_bytes) + " bytes";
  return {};
}

bool is_url(std::string_view location) {
  return location.find("://") != std::string_view::npos;
}

// Zero or negative intervals would make the refresh thread spin.
const JwksSource::Options& checked(const JwksSource::Options& o) {
  if (o.refresh.count() <= 0 || o.file_check.count() <= 0 || o.fetch_timeout.count() <= 0) {
    throw std::invalid_argument("JWKS refresh, file_check and fetch_timeout must be positive");
  }
  return o;
}

}  // namespace

// ---- public API ------------------------------------------------------------------------------

std::string_view to_string(Algorithm alg) noexcept {
  switch (alg) {
    case Algorithm::kRs256:
      return "RS256";
    case Algorithm::kEs256:
      return "ES256";
    case Algorithm::kEdDsa:
      return "EdDSA";
  }
  return "unknown";
}

std::optional<Algorithm> parse_algorithm(std::string_view name) noexcept {
  if (name == "RS256") return Algorithm::kRs256;
  if (name == "ES256") return Algorithm::kEs256;
  if (name == "EdDSA") return Algorithm::kEdDsa;
  return std::nullopt;
}

std::string_view to_string(VerifyError error) noexcept {
  switch (error) {
    case VerifyError::kMalformed:
      return "malformed";
    case VerifyError::kUnsupportedAlgorithm:
      return "unsupported_algorithm";
    case VerifyError::kUnknownKey:
      return "unknown_key";
    case VerifyError::kBadSignature:
      return "bad_signature";
    case VerifyError::kExpired:
      return "expired";
    case VerifyError::kNotYetValid:
      return "not_yet_valid";
    case VerifyError::kWrongIssuer:
      return "wrong_issuer";
    case VerifyError::kWrongAudience:
      return "wrong_audience";
    case VerifyError::kMissingClaim:
      return "missing_claim";
  }
  return "unknown";
}

std::string publish_scope(std::string_view topic) {
  return std::string(kPublishScopePrefix) + std::string(topic);
}

bool Claims::has_scope(std::string_view scope) const noexcept {
  return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

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

VerifyResult verify(std::string_view token, const KeySet& keys, const VerifyPolicy& policy, Clock::time_point now) {
  Clock::time_point valid_from;
  return verify_token(token, keys, policy, now, valid_from);
}

TokenVerifier::TokenVerifier(VerifyPolicy policy, std::shared_ptr<const KeySet> keys, std::size_t max_cached)
    : policy_(std::move(policy)),
      max_cached_(max_cached),
      keys_(keys ? std::move(keys) : std::make_shared<const KeySet>()) {}

VerifyResult TokenVerifier::verify(std::string_view token, Clock::time_point now) {
  // Refused before the lookup, so that a huge header is not even hashed.
  if (token.size() > policy_.max_token_bytes) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return refuse(VerifyError::kMalformed,
                  "token is longer than " + std::to_string(policy_.max_token_bytes) + " bytes");
  }
  std::shared_ptr<const KeySet> keys;
  std::uint64_t generation = 0;
  {
    std::shared_lock lock(mutex_);
    if (const auto it = cache_.find(token); it != cache_.end()) {
      const Entry& e = it->second;
      if (e.valid_from <= now && now < e.expires) {
        hits_.fetch_add(1, std::memory_order_relaxed);
        return VerifyResult{e.claims, VerifyError::kMalformed, {}};
      }
    }
    keys = keys_;
    generation = generation_;
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  Clock::time_point valid_from;
  VerifyResult result = verify_token(token, *keys, policy_, now, valid_from);
  if (!result || max_cached_ == 0 || now >= result.claims->expires_at) return result;
  std::unique_lock lock(mutex_);
  // Keys replaced while we verified: the answer may rest on a retired key, so it is not kept.
  if (generation != generation_) return result;
  // An expired entry for this same token stays until evicted: the token can never verify again.
  const auto [it, inserted] =
      cache_.try_emplace(std::string(token), Entry{result.claims, valid_from, result.claims->expires_at});
  if (inserted) {
    order_.push_back(&it->first);
    while (cache_.size() > max_cached_) {
      const auto victim = cache_.find(*order_.front());
      order_.pop_front();
      cache_.erase(victim);
    }
  }
  return result;
}

void TokenVerifier::replace_keys(std::shared_ptr<const KeySet> keys) {
  std::unique_lock lock(mutex_);
  keys_ = keys ? std::move(keys) : std::make_shared<const KeySet>();
  ++generation_;
  cache_.clear();
  order_.clear();
}

std::shared_ptr<const KeySet> TokenVerifier::keys() const {
  std::shared_lock lock(mutex_);
  return keys_;
}

std::size_t TokenVerifier::cache_size() const {
  std::shared_lock lock(mutex_);
  return cache_.size();
}

JwksSource::JwksSource(Options options, TokenVerifier& verifier)
    : options_(checked(options)), is_url_(is_url(options_.location)), verifier_(verifier) {
  if (is_url_) {
    // Throws on a malformed URL, before any fetch.
    if (!jwks_url(options_.location).tls) {
      spdlog::warn(
          "JWKS {}: fetched over plain http, which does not authenticate the server; use https, or http only on "
          "a trusted network",
          options_.location);
    }
  }
  last_stamp_ = stamp();  // taken before reading, so a write during the read is seen next time
  if (auto error = load(); !error.empty()) throw std::runtime_error("JWKS " + options_.location + ": " + error);
  thread_ = std::thread([this] { run(); });
}

JwksSource::~JwksSource() {
  {
    std::lock_guard lock(stop_mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<JwksSource::FileStamp> JwksSource::stamp() const {
  if (is_url_) return std::nullopt;
  struct stat st {};
  if (::stat(options_.location.c_str(), &st) != 0) return std::nullopt;
  constexpr std::int64_t kNanosPerSecond = 1'000'000'000;
  return FileStamp{static_cast<std::int64_t>(st.st_mtim.tv_sec) * kNanosPerSecond + st.st_mtim.tv_nsec,
                   static_cast<std::int64_t>(st.st_size), static_cast<std::uint64_t>(st.st_ino)};
}

std::string JwksSource::load() {
  std::string document;
  std::string error;
  try {
    error = is_url_ ? http_get(jwks_url(options_.location), options_.ca_file, options_.fetch_timeout,
                               options_.max_document_bytes, document)
                    : read_file(options_.location, options_.max_document_bytes, document);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!error.empty()) return error;
  if (loads() > 0 && document == last_document_) return {};  // unchanged: keep the verifier's cache
  auto parsed = parse_jwks(document);
  if (!parsed) return parsed.error;
  for (const auto& s : parsed.skipped) {
    spdlog::warn("JWKS {}: key #{} (kid {}) skipped: {}", options_.location, s.index, s.kid.empty() ? "-" : s.kid,
                 s.reason);
  }
  if (parsed.keys->empty()) return "no usable key in the set";
  const auto kids = parsed.keys->kids();
  verifier_.replace_keys(std::make_shared<const KeySet>(std::move(*parsed.keys)));
  last_document_ = std::move(document);
  loads_.fetch_add(1, std::memory_order_relaxed);
  std::string kid_list;
  for (const auto& kid : kids) kid_list += (kid_list.empty() ? "" : ", ") + kid;
  spdlog::info("JWKS {}: {} key(s) in use: {}", options_.location, kids.size(), kid_list);
  return {};
}

void JwksSource::run() {
  using Steady = std::chrono::steady_clock;
  auto next_refresh = Steady::now() + options_.refresh;
  std::unique_lock lock(stop_mutex_);
  while (!stop_) {
    const auto wake = is_url_ ? next_refresh : std::min(next_refresh, Steady::now() + options_.file_check);
    if (stop_cv_.wait_until(lock, wake, [this] { return stop_; })) break;
    lock.unlock();
    bool due = Steady::now() >= next_refresh;
    if (!is_url_) {
      if (auto now_stamp = stamp(); now_stamp != last_stamp_) {
        last_stamp_ = now_stamp;
        due = true;
      }
    }
    if (due) {
      next_refresh = Steady::now() + options_.refresh;
      if (auto error = load(); !error.empty()) {
        failures_.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("JWKS {}: refresh failed, keeping the last good key set: {}", options_.location, error);
      }
    }
    lock.lock();
  }
}

}  // namespace pix::security
