#pragma once
/// @file PIX keys (chaves): CPF, CNPJ, phone, e-mail and random (EVP) keys, as the DICT accepts them.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pix::domain {

/// @brief The five kinds of PIX key.
enum class KeyType { kCpf, kCnpj, kPhone, kEmail, kEvp };

/// No PIX key of any type is longer than this (the DICT's limit, set by the e-mail keys).
inline constexpr std::size_t kMaxKeyLength = 77;

/// "cpf", "cnpj", "phone", "email" or "evp".
std::string_view to_string(KeyType type) noexcept;

/// @brief A CPF: 11 digits whose last two are check digits, bare ("52998224725") or formatted
/// ("529.982.247-25"). Eleven identical digits pass the check-digit arithmetic but are not
/// issued, so they are refused.
bool is_valid_cpf(std::string_view key) noexcept;

/// @brief A CNPJ: 12 characters [0-9A-Z] and 2 numeric check digits, bare or formatted
/// ("12.ABC.345/01DE-35"). Covers the numeric CNPJ and the alphanumeric one issued from July 2026.
/// Letters must be uppercase (the check digits are computed over ASCII codes); all-identical
/// characters are refused.
bool is_valid_cnpj(std::string_view key) noexcept;

/// @brief An E.164 phone number with its '+' ("+14155552671"); a Brazilian (+55) number must be a
/// mobile: two-digit area code, then 9 and 8 digits ("+5511987654321").
bool is_valid_phone(std::string_view key) noexcept;

/// @brief A lowercase e-mail address of at most 77 characters with a dotted domain. Deliberately
/// simpler than RFC 5322: quoted local parts, IP-literal domains and non-ASCII are refused.
bool is_valid_email(std::string_view key) noexcept;

/// @brief A random key: a UUID in lowercase canonical form (8-4-4-4-12 hex digits).
bool is_valid_evp(std::string_view key) noexcept;

/// @brief The type of `key`, only when the key is valid for it.
///
/// The type is recognised by shape, as the DICT does: a leading '+' is a phone, an '@' an e-mail,
/// 36 characters with hyphens in UUID places an EVP, 11 digits (or 000.000.000-00) a CPF, 14
/// alphanumerics (or 00.000.000/0000-00) a CNPJ. A key of the right shape that fails its checks
/// gives nullopt; check_key() says why.
std::optional<KeyType> detect_key_type(std::string_view key) noexcept;

/// @brief Outcome of check_key(): exactly one of `type` and `error` is set.
struct KeyCheck {
  std::optional<KeyType> type;
  std::string error;  ///< short and specific, e.g. "cpf check digits do not match"

  explicit operator bool() const noexcept { return type.has_value(); }
};

/// @brief Validates `key` as `declared` (or as the type its shape suggests, when none is declared)
/// and explains a failure.
KeyCheck check_key(std::string_view key, std::optional<KeyType> declared = std::nullopt);

/// @brief The form a key is stored in: a valid CPF or CNPJ without its punctuation; any other key
/// unchanged. Lets "529.982.247-25" and "52998224725" be recognised as the same key.
std::string canonical_key(std::string_view key);

}  // namespace pix::domain
