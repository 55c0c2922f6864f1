#pragma once
/// @file How the tail commands print one event: a readable line, or a JSON line.

#include <cstdint>
#include <map>
#include <string>

namespace pix::saga {

/// @brief What the tails know about one consumed event, whichever broker it came from.
struct EventView {
  std::int64_t time_ms = 0;
  std::string topic;     ///< Kafka topic or AMQP routing key
  std::string position;  ///< "p0@12" (Kafka) or "tag 7" (AMQP)
  std::string id;        ///< CloudEvents id / message_id
  std::string value;     ///< the event JSON as received
};

/// `2026-11-28T17:10:00.123Z pix.payment.requested p0@12 id=... tx=12345 {...}`
std::string readable_line(const EventView& e);
/// One JSON object: time, topic, position, id, transactionId, value (parsed when it is JSON).
std::string json_line(const EventView& e);

}  // namespace pix::saga
