#include "pix/domain/event_validation.hpp"

#include "pix/domain/amount.hpp"

#include <boost/json/value.hpp>

#include <string_view>

namespace pix::domain {
namespace {

enum class Kind { kNonEmptyString, kIdentifier, kAmount };

struct Rule {
  std::string_view field;
  Kind kind;
};

std::string path(std::string_view field) {
  return "value." + std::string(field);
}

std::optional<FieldError> check(const boost::json::object& value, const Rule& rule) {
  const auto* v = value.if_contains(rule.field);
  if (v == nullptr || v->is_null()) return FieldError{path(rule.field), "is required"};
  switch (rule.kind) {
    case Kind::kNonEmptyString:
      if (!v->is_string()) return FieldError{path(rule.field), "must be a string"};
      if (v->get_string().empty()) return FieldError{path(rule.field), "must not be empty"};
      return std::nullopt;
    case Kind::kIdentifier:
      // The seed sends "12345"; integral ids are accepted too, as their decimal text.
      if (v->is_int64() || v->is_uint64()) return std::nullopt;
      if (!v->is_string()) return FieldError{path(rule.field), "must be a string"};
      if (v->get_string().empty()) return FieldError{path(rule.field), "must not be empty"};
      if (v->get_string().size() > 256) return FieldError{path(rule.field), "must be at most 256 characters"};
      return std::nullopt;
    case Kind::kAmount: {
      // Only the shape is checked here. Whether the amount is acceptable (positive, at most two
      // decimals) is the anti-fraud stage's call, so that such a payment is rejected with an SPI
      // reason code (AM01, ED05) for everyone to see rather than refused at the door.
      const auto parsed = parse_amount(*v);
      switch (parsed.reason) {
        case AmountError::kNone:
        case AmountError::kNegative:
        case AmountError::kTooManyDecimals:
          return std::nullopt;
        default:
          return FieldError{path(rule.field), "must be an amount such as 100, 10.50 or \"100.00\""};
      }
    }
  }
  return std::nullopt;
}

constexpr Rule kRequested[] = {{"transactionId", Kind::kIdentifier},
                               {"amount", Kind::kAmount},
                               {"payer", Kind::kNonEmptyString},
                               {"receiver", Kind::kNonEmptyString}};
constexpr Rule kWithStatus[] = {{"transactionId", Kind::kIdentifier}, {"status", Kind::kNonEmptyString}};
constexpr Rule kAudit[] = {{"transactionId", Kind::kIdentifier}, {"action", Kind::kNonEmptyString}};

}  // namespace

std::optional<FieldError> validate_event(Topic topic, const boost::json::object& value) {
  auto run = [&](const auto& rules) -> std::optional<FieldError> {
    for (const Rule& r : rules) {
      if (auto err = check(value, r)) return err;
    }
    return std::nullopt;
  };
  switch (topic) {
    case Topic::kPaymentRequested:
      return run(kRequested);
    case Topic::kPaymentValidated:
    case Topic::kPaymentSettled:
    case Topic::kNotificationSent:
      return run(kWithStatus);
    case Topic::kAuditLog:
      return run(kAudit);
  }
  return std::nullopt;
}

}  // namespace pix::domain
