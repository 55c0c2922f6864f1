#pragma once
/// @file The publisher confirms of one AMQP channel: which sent message each basic.ack,
/// basic.nack and basic.return is about, and the verdict it makes. No socket, no rabbitmq-c.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "pix/broker/publisher.hpp"

namespace pix::amqp::detail {

/// basic.return's reply code for a mandatory message no queue is bound for (spec 1.1: NO_ROUTE).
constexpr std::uint16_t kReplyNoRoute = 312;

/// @brief The sent-but-unconfirmed messages of a channel in confirm mode, in publish order.
///
/// The broker numbers a channel's publishes 1, 2, 3... from confirm.select on (spec extension
/// "publisher confirms"), so a message's delivery tag is implied by its position: on_sent() does
/// not take one. Every message gets exactly one verdict, through the `Answer` given to the
/// constructor: from its confirm, its expiry or fail_all(), whichever comes first; a confirm
/// arriving after that is ignored.
class ConfirmTracker {
 public:
  using Clock = std::chrono::steady_clock;
  /// Delivers a verdict; called exactly once per message, on the thread calling the tracker.
  using Answer = std::function<void(broker::PublishCallback& done, broker::PublishStatus status, std::string detail)>;

  /// Messages without a confirm `confirm_timeout` after on_sent() are answered kTimedOut.
  ConfirmTracker(std::chrono::milliseconds confirm_timeout, Answer answer);

  /// The next delivery tag was sent: message `id` with `routing_key`, answered through `done`.
  void on_sent(std::string id, std::string routing_key, broker::PublishCallback done, Clock::time_point sent_at);

  /// basic.ack for `tag` (and every earlier one when `multiple`): kAcked, or kRejected when a
  /// basic.return named the message first. Empty, or, for a tag never sent, why the broker's
  /// confirms can no longer be trusted: then nothing is answered and the caller drops the
  /// connection (fail_all), since no outstanding message may be taken for confirmed.
  [[nodiscard]] std::string on_ack(std::uint64_t tag, bool multiple);
  /// basic.nack, as on_ack(): kNacked, since another queue the message routes to may hold a copy.
  [[nodiscard]] std::string on_nack(std::uint64_t tag, bool multiple);

  /// The content header of a basic.return: marks the returned message, which its confirm will
  /// then answer kRejected. Returns come in publish order and before the message's own confirm,
  /// so it is the first message after the previous return with this id and routing key. False
  /// when no unconfirmed message matches.
  bool on_return(std::uint16_t reply_code, std::string_view message_id, std::string_view routing_key);

  /// Answers kTimedOut ("may have been stored") every message sent at least confirm_timeout ago.
  void expire(Clock::time_point now);
  /// When expire() next has something to do, if anything is unconfirmed.
  std::optional<Clock::time_point> next_expiry() const noexcept;

  /// The channel is gone: answers every unanswered message kTimedOut with `detail` (it may have
  /// been stored), and numbers the next channel's publishes from 1 again.
  void fail_all(const std::string& detail);

  /// Messages still waiting for a verdict.
  std::size_t unanswered() const noexcept;
  /// Nothing waits for a verdict.
  bool empty() const noexcept { return unconfirmed_.empty(); }
  /// The delivery tag the next on_sent() gets.
  std::uint64_t next_tag() const noexcept { return next_tag_; }

 private:
  /// A sent message waiting for its confirm; its delivery tag is implied by its position.
  struct Unconfirmed {
    std::string id;
    std::string routing_key;
    broker::PublishCallback done;
    Clock::time_point sent_at;
    std::uint16_t return_code = 0;  ///< non-zero once a basic.return named this message
    bool answered = false;          ///< the verdict is given; a late confirm is ignored
  };

  std::string settle(std::uint64_t tag, bool multiple, bool ack);
  /// Drops answered messages from the front, so that the front waits for a verdict.
  void drop_answered() noexcept;

  const std::chrono::milliseconds confirm_timeout_;
  const std::string expired_detail_;
  const Answer answer_;
  std::deque<Unconfirmed> unconfirmed_;
  std::uint64_t first_tag_ = 1;  ///< delivery tag of unconfirmed_.front()
  std::uint64_t next_tag_ = 1;   ///< delivery tag the next publish gets
  std::uint64_t last_returned_tag_ = 0;
};

}  // namespace pix::amqp::detail
