#include "pix/domain/amount.hpp"

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace pix::domain {
namespace {

// Amounts as the consumer sees them: parsed from the event's JSON text.
AmountParse from_json(std::string_view json) {
  return parse_amount(boost::json::parse(json));
}

std::int64_t cents_of(std::string_view json) {
  const AmountParse parsed = from_json(json);
  EXPECT_TRUE(parsed) << json << ": " << parsed.error;
  EXPECT_TRUE(parsed.error.empty());
  return parsed.cents.value_or(-1);
}

AmountParse failure_of(std::string_view json) {
  const AmountParse parsed = from_json(json);
  EXPECT_FALSE(parsed) << json << " parsed as " << parsed.cents.value_or(0) << " cents";
  EXPECT_FALSE(parsed.error.empty());
  return parsed;
}

TEST(AmountParse, IntegersAreReais) {
  EXPECT_EQ(cents_of("100"), 10000);
  EXPECT_EQ(cents_of("1"), 100);
  EXPECT_EQ(cents_of("0"), 0);
  EXPECT_EQ(cents_of("9999999999"), 999'999'999'900);
}

TEST(AmountParse, DoublesAreReadFromTheirShortestText) {
  EXPECT_EQ(cents_of("10.5"), 1050);
  EXPECT_EQ(cents_of("19.99"), 1999);
  EXPECT_EQ(cents_of("0.01"), 1);
  EXPECT_EQ(cents_of("100.0"), 10000);
  EXPECT_EQ(cents_of("9999999999.99"), kMaxAmountCents);
  // d * 100 would truncate each of these a centavo short.
  EXPECT_EQ(cents_of("1.15"), 115);
  EXPECT_EQ(cents_of("4.35"), 435);
  EXPECT_EQ(cents_of("0.29"), 29);
  EXPECT_EQ(cents_of("1e2"), 10000);
}

TEST(AmountParse, DoublesFinerThanACentavoAreRefused) {
  const AmountParse parsed = failure_of("10.505");
  EXPECT_EQ(parsed.error, "more than 2 decimal places");
  EXPECT_EQ(parsed.reason, AmountError::kTooManyDecimals);
  EXPECT_EQ(failure_of("0.001").reason, AmountError::kTooManyDecimals);
  EXPECT_EQ(failure_of("1e-300").reason, AmountError::kTooManyDecimals);
  // What 0.1 + 0.2 computes in binary is not 0.30, and must not be taken for it.
  EXPECT_EQ(parse_amount(boost::json::value(0.1 + 0.2)).reason, AmountError::kTooManyDecimals);
}

TEST(AmountParse, StringsTakeTheApiPixForm) {
  EXPECT_EQ(cents_of(R"("123.45")"), 12345);
  EXPECT_EQ(cents_of(R"("0.01")"), 1);
  EXPECT_EQ(cents_of(R"("100")"), 10000);
  EXPECT_EQ(cents_of(R"("0.00")"), 0);
  EXPECT_EQ(cents_of(R"("9999999999.99")"), kMaxAmountCents);
}

TEST(AmountParse, StringsOutsideTheApiPixFormAreRefused) {
  EXPECT_EQ(failure_of(R"("10.5")").reason, AmountError::kMissingDecimals);
  EXPECT_EQ(failure_of(R"("10.505")").error, "more than 2 decimal places");
  for (const char* bad : {R"("")", R"("abc")", R"("1e3")", R"(" 1.00")", R"("1.00 ")", R"("10.")", R"(".50")",
                          R"("1,00")", R"("+1.00")", R"("--1.00")", R"("1.2.3")"}) {
    EXPECT_EQ(failure_of(bad).reason, AmountError::kNotAnAmount) << bad;
  }
}

TEST(AmountParse, NegativesAreRefusedAsNegative) {
  EXPECT_EQ(failure_of("-1").reason, AmountError::kNegative);
  EXPECT_EQ(failure_of("-0.5").reason, AmountError::kNegative);
  EXPECT_EQ(failure_of(R"("-5.00")").reason, AmountError::kNegative);
  EXPECT_EQ(failure_of(R"("-5.00")").error, "negative");
  // Negative zero is zero.
  EXPECT_EQ(cents_of("-0.0"), 0);
}

TEST(AmountParse, AmountsAboveTheMaximumAreRefused) {
  EXPECT_EQ(failure_of("10000000000").reason, AmountError::kTooLarge);
  EXPECT_EQ(failure_of("1e10").reason, AmountError::kTooLarge);
  EXPECT_EQ(failure_of("1e300").reason, AmountError::kTooLarge);
  EXPECT_EQ(failure_of("18446744073709551615").reason, AmountError::kTooLarge);
  EXPECT_EQ(failure_of(R"("10000000000.00")").reason, AmountError::kTooLarge);
  EXPECT_EQ(failure_of("10000000000").error, "over the maximum of 9999999999.99");
}

TEST(AmountParse, NonNumbersAreRefused) {
  EXPECT_EQ(failure_of("null").reason, AmountError::kMissing);
  EXPECT_EQ(failure_of("true").reason, AmountError::kNotAnAmount);
  EXPECT_EQ(failure_of("[100]").reason, AmountError::kNotAnAmount);
  EXPECT_EQ(failure_of(R"({"value":100})").reason, AmountError::kNotAnAmount);
  EXPECT_EQ(parse_amount(boost::json::value(std::numeric_limits<double>::quiet_NaN())).reason, AmountError::kNotFinite);
  EXPECT_EQ(parse_amount(boost::json::value(std::numeric_limits<double>::infinity())).reason, AmountError::kNotFinite);
}

TEST(AmountParse, SmallUnsignedValuesBuiltInCodeAreAccepted) {
  EXPECT_EQ(parse_amount(boost::json::value(std::uint64_t{25})).cents, 2500);
}

TEST(AmountFormat, TwoDecimalsAlways) {
  EXPECT_EQ(format_amount(12345), "123.45");
  EXPECT_EQ(format_amount(1), "0.01");
  EXPECT_EQ(format_amount(0), "0.00");
  EXPECT_EQ(format_amount(100000), "1000.00");
  EXPECT_EQ(format_amount(kMaxAmountCents), "9999999999.99");
  EXPECT_EQ(format_amount(-250), "-2.50");
}

TEST(AmountFormat, RoundTripsThroughTheStringForm) {
  for (std::int64_t cents :
       {std::int64_t{1}, std::int64_t{99}, std::int64_t{100}, std::int64_t{123456789}, kMaxAmountCents}) {
    EXPECT_EQ(parse_amount_text(format_amount(cents)).cents, cents);
  }
}

}  // namespace
}  // namespace pix::domain
