#include "pix/broker/publisher.hpp"

namespace pix::broker {

void OutboundEvent::set_header(std::string_view name, std::string value) {
  for (auto& h : headers) {
    if (h.name == name) {
      h.value = std::move(value);
      return;
    }
  }
  headers.push_back({std::string(name), std::move(value)});
}

std::string_view to_string(PublishStatus s) noexcept {
  switch (s) {
    case PublishStatus::kAcked:
      return "acked";
    case PublishStatus::kBrokerUnavailable:
      return "broker_unavailable";
    case PublishStatus::kQueueFull:
      return "queue_full";
    case PublishStatus::kTimedOut:
      return "timed_out";
    case PublishStatus::kRejected:
      return "rejected";
    case PublishStatus::kShuttingDown:
      return "shutting_down";
    case PublishStatus::kNacked:
      return "nacked";
  }
  return "unknown";
}

}  // namespace pix::broker
