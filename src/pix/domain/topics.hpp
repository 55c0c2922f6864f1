#pragma once
/// @file The five PIX topics (Kafka topics and RabbitMQ routing keys) of the seed's contract.

#include <array>
#include <optional>
#include <string_view>

namespace pix::domain {

/// @brief The stages a PIX payment goes through; each is one topic / routing key.
enum class Topic { kPaymentRequested, kPaymentValidated, kPaymentSettled, kNotificationSent, kAuditLog };

inline constexpr std::array<std::string_view, 5> kTopicNames = {
    "pix.payment.requested", "pix.payment.validated", "pix.payment.settled", "pix.notification.sent", "pix.audit.log"};

/// The topic a request gets when it names none (the seed's default).
inline constexpr Topic kDefaultTopic = Topic::kPaymentRequested;

constexpr std::string_view topic_name(Topic t) noexcept {
  return kTopicNames[static_cast<std::size_t>(t)];
}

constexpr std::optional<Topic> parse_topic(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kTopicNames.size(); ++i) {
    if (kTopicNames[i] == name) return static_cast<Topic>(i);
  }
  return std::nullopt;
}

}  // namespace pix::domain
