#pragma once
/// @file Random PIX keys for the simulator: valid keys of every type (they pass the validators in
/// pix/domain/pix_keys.hpp) and invalid ones for the payments that must trip the AC03 rule. Also
/// the few random draws the simulator makes, written out so that a seed gives the same traffic
/// with any standard library.

#include <cstdint>
#include <random>
#include <string>

#include "pix/domain/pix_keys.hpp"

namespace pix::sim {

/// @brief The simulator's random engine. Its output sequence is fixed by the C++ standard, so a
/// seed means the same thing everywhere.
using Rng = std::mt19937_64;

// --- draws ---
// std::uniform_int_distribution and friends are implementation-defined (libstdc++ and libc++
// give different numbers for the same engine), so the simulator draws through these instead.

/// @brief A well-mixed seed for the sub-stream `stream` of `seed` (the SplitMix64 finalizer), so
/// that nearby seeds and streams (seed 42 stream 7, seed 43 stream 7) start unrelated engines.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) noexcept;

/// @brief Uniform in [0, n) without modulo bias. `n` must be > 0.
std::uint64_t uniform_below(Rng& rng, std::uint64_t n);

/// @brief Uniform in [0, 1), 53 bits.
double uniform_unit(Rng& rng);

/// @brief True with probability `p` (p <= 0 never, p >= 1 always).
bool chance(Rng& rng, double p);

/// @brief A standard normal variate (Box-Muller; one draw per call, so calls stay independent of
/// what was drawn before).
double standard_normal(Rng& rng);

// --- valid keys ---

/// @brief A CPF as 11 bare digits with valid check digits; never 11 identical digits.
std::string make_cpf(Rng& rng);

/// @brief A CNPJ as 14 bare characters with valid check digits. Numeric: 8 digits of root, a
/// 4-digit branch (mostly 0001, the head office) and 2 check digits. Alphanumeric (issued from
/// July 2026): 12 characters [0-9A-Z], at least one of them a letter, and 2 numeric check digits.
std::string make_cnpj(Rng& rng, bool alphanumeric);

/// @brief A Brazilian mobile number in E.164: +55, a real area code (DDD, both digits 1-9), 9 and
/// 8 digits, e.g. "+5511987654321".
std::string make_phone(Rng& rng);

/// @brief A lowercase e-mail address built from Brazilian names and common mail domains, well
/// under 77 characters, e.g. "maria.souza83@gmail.com".
std::string make_email(Rng& rng);

/// @brief A random key (EVP): a version 4 UUID in lowercase canonical form.
std::string make_evp(Rng& rng);

/// @brief A valid key of `type`. A CNPJ is alphanumeric half of the time.
std::string make_key(Rng& rng, domain::KeyType type);

// --- invalid keys ---

/// @brief The ways make_invalid_key() gets a key wrong; each one fails domain::check_key().
enum class InvalidKeyKind {
  kCpfCheckDigit,     ///< a CPF whose last check digit is off
  kCpfRepeated,       ///< 11 identical digits (the arithmetic passes, the Receita never issues it)
  kCnpjCheckDigit,    ///< a CNPJ (numeric or alphanumeric) whose last check digit is off
  kCnpjLowercase,     ///< an alphanumeric CNPJ written in lowercase
  kPhoneLandline,     ///< +55 with a landline number (no leading 9): landlines cannot hold keys
  kPhoneWithoutPlus,  ///< a mobile number without the '+' and country code format
  kEmailUppercase,    ///< an e-mail with capitals: keys are stored lowercase
  kEmailNoDomainDot,  ///< an e-mail whose domain has no dot ("ana@localhost")
  kEmailTooLong,      ///< an e-mail over the 77-character limit
  kEvpUppercase,      ///< a UUID in uppercase
  kEvpMalformed,      ///< a UUID missing a digit
};
inline constexpr int kInvalidKeyKinds = 11;

/// @brief An invalid key of the given kind.
std::string make_invalid_key(Rng& rng, InvalidKeyKind kind);

/// @brief An invalid key of a kind picked at random: what a payer's app might send after a typo.
std::string make_invalid_key(Rng& rng);

}  // namespace pix::sim
