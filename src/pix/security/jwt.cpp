// JWT verification (RFC 7519, RFC 8725): signatures, claims, the verifier and its cache. The keys
// come from jwk.cpp (JWK import, JWK Sets), refreshed by jwks_source.cpp.
#include "pix/security/jwt.hpp"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "pix/security/base64url.hpp"
#include "pix/security/jose.hpp"

namespace pix::security {

void detail::EvpPkeyFree::operator()(EVP_PKEY* key) const noexcept {
  EVP_PKEY_free(key);
}

namespace {

using Clock = std::chrono::system_clock;
using namespace jose;  // this component's own helpers (jose.hpp)

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

}  // namespace pix::security
