#pragma once
/// @file What makes two events "the same payment": a fingerprint of the payment's content, so
/// that a payment id seen again with other content is recognised as a duplicate (AM05), never
/// merged with the first.

#include <boost/json/value.hpp>

#include <string>

namespace pix::domain {

/// ISO 20022 ExternalStatusReason1Code AM05, "Duplication": a payment id already decided for a
/// payment with other content. docs/guarantees.md says why this code.
inline constexpr std::string_view kReasonDuplicate = "AM05";

/// The JSON text of `v` with every object's members sorted by name (recursively) and no
/// whitespace: two values that differ only in member order or spacing have the same text.
std::string canonical_json(const boost::json::value& v);

/// The fingerprint of a `pix.payment.requested` value: the first 32 hex digits (128 bits) of
/// SHA-256 over its canonical JSON, prefixed "v1:". Any change of payer, receiver, amount, key,
/// description or any other field changes it; re-ordering or re-spacing the JSON does not.
std::string payment_fingerprint(const boost::json::value& requested_value);

}  // namespace pix::domain
