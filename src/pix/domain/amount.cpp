#include "pix/domain/amount.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

namespace pix::domain {
namespace {

constexpr std::int64_t kMaxWholeReais = kMaxAmountCents / 100;  // 9,999,999,999
constexpr std::size_t kMaxWholeDigits = 10;

AmountParse failure(AmountError reason) {
  AmountParse out;
  out.reason = reason;
  switch (reason) {
    case AmountError::kNone:
      break;
    case AmountError::kMissing:
      out.error = "missing";
      break;
    case AmountError::kNotAnAmount:
      out.error = "not a number or a decimal string such as \"123.45\"";
      break;
    case AmountError::kNegative:
      out.error = "negative";
      break;
    case AmountError::kTooManyDecimals:
      out.error = "more than 2 decimal places";
      break;
    case AmountError::kMissingDecimals:
      out.error = "a decimal string needs exactly 2 decimal places, as in \"10.50\"";
      break;
    case AmountError::kTooLarge:
      out.error = "over the maximum of 9999999999.99";
      break;
    case AmountError::kNotFinite:
      out.error = "not a finite number";
      break;
  }
  return out;
}

AmountParse success(std::int64_t cents) {
  AmountParse out;
  out.cents = cents;
  return out;
}

bool all_digits(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// `whole` and `frac` are digit strings, `frac` at most 2 long ("5" means 50 centavos).
AmountParse from_digits(std::string_view whole, std::string_view frac) {
  // Leading zeros carry no value; what is left must fit in 10 digits.
  const auto first = whole.find_first_not_of('0');
  const std::string_view significant = first == std::string_view::npos ? std::string_view{} : whole.substr(first);
  if (significant.size() > kMaxWholeDigits) return failure(AmountError::kTooLarge);
  std::int64_t cents = 0;
  for (char c : significant) cents = cents * 10 + (c - '0');
  cents *= 100;
  if (!frac.empty()) cents += std::int64_t{frac[0] - '0'} * 10;
  if (frac.size() == 2) cents += frac[1] - '0';
  return success(cents);
}

AmountParse from_integer(std::int64_t reais) {
  if (reais < 0) return failure(AmountError::kNegative);
  if (reais > kMaxWholeReais) return failure(AmountError::kTooLarge);
  return success(reais * 100);
}

AmountParse from_double(double d) {
  if (!std::isfinite(d)) return failure(AmountError::kNotFinite);
  if (d < 0) return failure(AmountError::kNegative);
  if (d == 0) return success(0);  // also -0.0, whose text would carry a sign
  if (d >= 1e10) return failure(AmountError::kTooLarge);
  // The shortest text that reads back as the same double is what the sender wrote (or the
  // nearest they could have meant); judging that text, not d * 100, keeps 10.505 from passing as
  // 1050.4999... -> 1050 and keeps 19.99 from becoming 1998.
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::fixed);
  // Below 1e10 only a long fraction (a tiny value such as 1e-300) can overflow the buffer.
  if (ec != std::errc{}) return failure(AmountError::kTooManyDecimals);
  const std::string_view text(buf, static_cast<std::size_t>(end - buf));
  const auto dot = text.find('.');
  const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (frac.size() > 2) return failure(AmountError::kTooManyDecimals);
  return from_digits(text.substr(0, dot), frac);
}

}  // namespace

AmountParse parse_amount_text(std::string_view text) {
  if (text.empty()) return failure(AmountError::kNotAnAmount);
  if (text.front() == '-') {
    // A number with a minus sign is negative (an AM01 matter) rather than gibberish (ED05).
    const AmountParse magnitude = parse_amount_text(text.substr(1));
    const bool is_number = magnitude.reason != AmountError::kNotAnAmount && magnitude.reason != AmountError::kNegative;
    return is_number ? failure(AmountError::kNegative) : failure(AmountError::kNotAnAmount);
  }
  const auto dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (whole.empty() || !all_digits(whole) || !all_digits(frac)) return failure(AmountError::kNotAnAmount);
  if (dot != std::string_view::npos) {
    if (frac.empty()) return failure(AmountError::kNotAnAmount);  // "10."
    if (frac.size() == 1) return failure(AmountError::kMissingDecimals);
    if (frac.size() > 2) return failure(AmountError::kTooManyDecimals);
  }
  if (whole.size() > kMaxWholeDigits) return failure(AmountError::kTooLarge);
  return from_digits(whole, frac);
}

AmountParse parse_amount(const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::null:
      return failure(AmountError::kMissing);
    case boost::json::kind::int64:
      return from_integer(value.get_int64());
    case boost::json::kind::uint64:
      // The parser stores only integers above INT64_MAX as uint64, but code may build small ones.
      return value.get_uint64() > static_cast<std::uint64_t>(kMaxWholeReais)
                 ? failure(AmountError::kTooLarge)
                 : from_integer(static_cast<std::int64_t>(value.get_uint64()));
    case boost::json::kind::double_:
      return from_double(value.get_double());
    case boost::json::kind::string: {
      const auto& s = value.get_string();
      return parse_amount_text(std::string_view(s.data(), s.size()));
    }
    case boost::json::kind::bool_:
    case boost::json::kind::array:
    case boost::json::kind::object:
      break;
  }
  return failure(AmountError::kNotAnAmount);
}

std::string format_amount(std::int64_t cents) {
  const bool negative = cents < 0;
  // Unsigned negation is defined for INT64_MIN too.
  const std::uint64_t magnitude = negative ? 0 - static_cast<std::uint64_t>(cents) : static_cast<std::uint64_t>(cents);
  std::string out = negative ? "-" : "";
  out += std::to_string(magnitude / 100);
  out += '.';
  out += static_cast<char>('0' + magnitude % 100 / 10);
  out += static_cast<char>('0' + magnitude % 10);
  return out;
}

}  // namespace pix::domain
