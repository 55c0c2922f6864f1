#pragma once
/// @file What the JOSE units (jwt.cpp, jwk.cpp) share: OpenSSL holders and errors, JSON member
/// access, and how a value from a token may be echoed in a detail. Internal to security.

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <boost/json/object.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace pix::security::jose {

namespace json = boost::json;

/// JWS signature sizes (RFC 7518 §3.4, RFC 8037 §3.1).
inline constexpr std::size_t kEs256SignatureBytes = 64;
inline constexpr std::size_t kEd25519SignatureBytes = 64;

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
inline std::string take_openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no reason given";
  std::array<char, 256> text{};
  ERR_error_string_n(code, text.data(), text.size());
  return text.data();
}

inline const unsigned char* bytes_of(std::string_view s) noexcept {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// ---- JSON member access ----------------------------------------------------------------------

enum class Member { kAbsent, kWrongType, kOk };

inline Member string_member(const json::object& o, std::string_view name, std::string_view& out) {
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
inline std::string shown(std::string_view s) {
  constexpr std::size_t kMaxShown = 80;
  const bool safe = !s.empty() && s.size() <= kMaxShown && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("._-+:/").find(c) != std::string_view::npos;
  });
  return safe ? std::string(s) : std::string("(not shown)");
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

}  // namespace pix::security::jose
