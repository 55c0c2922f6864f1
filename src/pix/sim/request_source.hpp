#pragma once
/// @file What the simulator sends: one HTTP request per call, produced by a mode (seed events,
/// realistic payments, a fixed body) and sent by the load engine.

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace pix::sim {

/// @brief One request to send. `target` is a full URL path on one of the configured endpoints.
struct RequestSpec {
  std::size_t endpoint = 0;  ///< index into the engine's endpoints (e.g. 0 = api-kafka, 1 = api-rabbitmq)
  std::string target;        ///< "/kafka" or "/rabbit"
  std::string body;          ///< JSON
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers (Idempotency-Key, traceparent)
  std::string label;                                         ///< what it is, for printing (e.g. the topic, or "retry")
};

/// Produces the `seq`-th request (0, 1, 2...). Called from one thread at a time.
using RequestSource = std::function<RequestSpec(std::uint64_t seq)>;

}  // namespace pix::sim
