#pragma once
/// @file Turns the body of `POST /kafka` or `POST /rabbit` into a command to publish, or a Problem.

#include <string>
#include <string_view>
#include <variant>

#include "pix/domain/topics.hpp"
#include "pix/http/problem.hpp"

namespace pix::gateway {

/// @brief A request that passed every check and is ready to be put on the wire.
struct PublishCommand {
  domain::Topic topic = domain::kDefaultTopic;
  std::string payload;         ///< the `value` object, compact JSON
  std::string transaction_id;  ///< `value.transactionId` as text
  /// The Kafka record key: the payer on pix.payment.requested (one partition holds all of a
  /// payer's payments, so one anti-fraud member judges its velocity), the transactionId elsewhere.
  std::string record_key;
};

/// True for `application/json` and `application/*+json`, any parameters, any case.
bool is_json_media_type(std::string_view content_type) noexcept;

/// Check the media type, parse, resolve the topic and validate the event's fields.
/// Never throws on bad input: every rejection is a Problem naming what was wrong.
std::variant<PublishCommand, http::Problem> parse_publish_request(std::string_view content_type, std::string_view body);

}  // namespace pix::gateway
