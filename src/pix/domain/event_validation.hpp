#pragma once
/// @file Minimum shape of each PIX event, per topic (the seed's simulator events are the floor).

#include <boost/json/object.hpp>

#include <optional>
#include <string>

#include "pix/domain/topics.hpp"

namespace pix::domain {

/// @brief A field of the event that is missing or malformed.
struct FieldError {
  std::string field;   ///< JSON path from the request root, e.g. "value.amount"
  std::string reason;  ///< what is wrong, for a human
};

/// @brief Check that `value` carries the fields its topic requires, with the right types.
/// Extra fields are allowed and carried through untouched.
std::optional<FieldError> validate_event(Topic topic, const boost::json::object& value);

}  // namespace pix::domain
