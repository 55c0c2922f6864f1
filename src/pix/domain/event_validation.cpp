#include "pix/domain/event_validation.hpp"

#include <boost/json/value.hpp>

#include <cmath>
#include <string_view>

namespace pix::domain {
namespace {

enum class Kind { kNonEmptyString, kIdentifier, kPositiveAmount };

struct Rule {
  std::string_view field;
  Kind kind;
};

std::string path(std::string_view field) {
  return "value." + std::string(field);
}

// An amount is a positive JSON number, or the API Pix string form "123.45".
bool is_amount_string(std::string_view s) {
  const auto dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  if (whole.empty() || whole.size() > 10) return false;
  for (char c : whole) {
    if (c < '0' || c > '9') return false;
  }
  if (dot != std::string_view::npos) {
    const std::string_view frac = s.substr(dot + 1);
    if (frac.size() != 2 || frac[0] < '0' || frac[0] > '9' || frac[1] < '0' || frac[1] > '9') return false;
  }
  return s.find_first_not_of("0.") != std::string_view::npos;
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
    case Kind::kPositiveAmount:
      if (v->is_int64()) {
        return v->get_int64() > 0 ? std::nullopt
                                  : std::optional<FieldError>{FieldError{path(rule.field), "must be positive"}};
      }
      if (v->is_uint64()) return std::nullopt;
      if (v->is_double()) {
        const double d = v->get_double();
        return std::isfinite(d) && d > 0 ? std::nullopt
                                         : std::optional<FieldError>{FieldError{path(rule.field), "must be positive"}};
      }
      if (v->is_string()) {
        return is_amount_string(v->get_string())
                   ? std::nullopt
                   : std::optional<FieldError>{
                         FieldError{path(rule.field), "must be a positive amount such as 100 or \"100.00\""}};
      }
      return FieldError{path(rule.field), "must be a number"};
  }
  return std::nullopt;
}

constexpr Rule kRequested[] = {{"transactionId", Kind::kIdentifier},
                               {"amount", Kind::kPositiveAmount},
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
