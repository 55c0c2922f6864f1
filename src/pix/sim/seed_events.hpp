#pragma once
/// @file The seed project's simulator (`simulator/send_events.py`) rebuilt as a RequestSource:
/// its five example events, one per topic, picked at random.

#include <array>
#include <cstdint>
#include <string_view>

#include "pix/sim/request_source.hpp"

namespace pix::sim {

/// @brief One of the seed simulator's events.
struct SeedEvent {
  std::string_view topic;
  /// The request body byte for byte as the seed's `requests.post(url, json=event)` sends it
  /// (Python's json.dumps: ", " and ": " separators, fields in the seed's order).
  std::string_view body;
};

/// @brief The five events of `send_events.py`, in its order, with its values: transactionId
/// "tx123"; the payment of 100 from "Alice" to "Bob" (capitalised as in the seed: settlement funds
/// lowercase alice and bob only, so this one ends AM04 at settlement); statuses "validated",
/// "settled", "notified"; audit action "completed".
extern const std::array<SeedEvent, 5> kSeedEvents;

/// @brief Picks one of the five at random for each request (seq and `seed` decide which), as the
/// seed's `random.choice` did. Like the seed, a topic containing "payment" goes to the Kafka API
/// (endpoint 0, target "/kafka") and the others to the RabbitMQ API (endpoint 1, "/rabbit"). No
/// extra headers (the seed sent none); `label` is the topic.
RequestSource make_seed_source(std::uint64_t seed);

}  // namespace pix::sim
