#pragma once
/// @file Money as an integral number of centavos, parsed from the JSON forms payments arrive in.

#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pix::domain {

/// The largest amount the API Pix can express, `\d{1,10}\.\d{2}`: R$ 9,999,999,999.99.
inline constexpr std::int64_t kMaxAmountCents = 999'999'999'999;

/// @brief Why an amount did not parse, for callers that answer differently per cause
/// (a negative amount is an AM01 rejection, a malformed one ED05).
enum class AmountError {
  kNone,
  kMissing,          ///< null, or the field is absent
  kNotAnAmount,      ///< wrong JSON type, or text that is not a decimal number
  kNegative,         ///< a well-formed number below zero
  kTooManyDecimals,  ///< finer than a centavo
  kMissingDecimals,  ///< a string with one decimal digit: the API form takes exactly two
  kTooLarge,         ///< above kMaxAmountCents
  kNotFinite,        ///< NaN or infinity (possible in a boost::json::value built in code)
};

/// @brief Outcome of parse_amount(): exactly one of `cents` and `error` is set.
struct AmountParse {
  std::optional<std::int64_t> cents;
  std::string error;  ///< e.g. "more than 2 decimal places"; names no field, the caller does
  AmountError reason = AmountError::kNone;

  explicit operator bool() const noexcept { return cents.has_value(); }
};

/// @brief Reads an amount in reais into centavos.
///
/// Accepted: a JSON integer (100 -> 10000); a JSON double with at most 2 decimals, judged on its
/// shortest round-trip text so that binary floating point never shifts a centavo (10.5 -> 1050,
/// but 0.1 + 0.2 -> "0.30000000000000004" is refused); a string in the API Pix form
/// `\d{1,10}(\.\d{2})?` ("123.45", "100"). Zero parses (rules reject it, with AM01); negatives,
/// more than 2 decimals, amounts above kMaxAmountCents and anything else are refused.
AmountParse parse_amount(const boost::json::value& value);

/// @brief parse_amount() for text alone: the API Pix string form, as above. A separate name, so
/// that a string literal is never ambiguous between this and the JSON overload.
AmountParse parse_amount_text(std::string_view text);

/// @brief The API Pix text form: "123.45", "0.01", "1000.00" (a '-' in front of negatives).
std::string format_amount(std::int64_t cents);

}  // namespace pix::domain
