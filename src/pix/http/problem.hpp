#pragma once
/// @file RFC 9457 problem details: every error the HTTP edge answers with.

#include <string>
#include <vector>

namespace pix::http {

/// @brief One problem+json answer. `type` is a stable slug; it becomes a URN in the body.
struct Problem {
  int status = 500;
  std::string type;                  ///< e.g. "invalid-field"
  std::string title;                 ///< short, stable per type
  std::string detail;                ///< this occurrence, for a human
  std::string field;                 ///< JSON path of the offending field, when there is one
  std::vector<std::string> allowed;  ///< allowed values, when the field takes a closed set
  int retry_after_s = 0;             ///< > 0 adds a Retry-After header
  std::string event_id;              ///< when the event may exist (504)
};

/// Serialize as application/problem+json; `instance` is the request path.
std::string to_json(const Problem& p, std::string_view instance);

}  // namespace pix::http
