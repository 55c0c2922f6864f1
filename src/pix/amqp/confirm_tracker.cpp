#include "pix/amqp/confirm_tracker.hpp"

#include <algorithm>
#include <utility>

namespace pix::amqp::detail {

using broker::PublishStatus;

ConfirmTracker::ConfirmTracker(std::chrono::milliseconds confirm_timeout, Answer answer)
    : confirm_timeout_(confirm_timeout),
      expired_detail_("no publisher confirm within " + std::to_string(confirm_timeout.count()) +
                      " ms; the event may have been stored"),
      answer_(std::move(answer)) {}

void ConfirmTracker::on_sent(std::string id, std::string routing_key, broker::PublishCallback done,
                             Clock::time_point sent_at) {
  unconfirmed_.push_back(Unconfirmed{std::move(id), std::move(routing_key), std::move(done), sent_at});
  ++next_tag_;
}

std::string ConfirmTracker::on_ack(std::uint64_t tag, bool multiple) {
  return settle(tag, multiple, true);
}

std::string ConfirmTracker::on_nack(std::uint64_t tag, bool multiple) {
  return settle(tag, multiple, false);
}

std::string ConfirmTracker::settle(std::uint64_t tag, bool multiple, bool ack) {
  if (tag >= next_tag_ || tag == 0) {
    return std::string("the broker ") + (ack ? "acked" : "nacked") + " delivery tag " + std::to_string(tag) +
           ", which was never sent (next is " + std::to_string(next_tag_) + ")";
  }
  // Tags below first_tag_ belong to messages already answered (timed out) and dropped.
  if (tag < first_tag_) return {};
  const std::uint64_t from = multiple ? first_tag_ : tag;
  for (std::uint64_t t = from; t <= tag; ++t) {
    auto& entry = unconfirmed_[t - first_tag_];
    if (entry.answered) continue;
    entry.answered = true;
    if (!ack) {
      // A queue refused it (at x-max-length with reject-publish, or its process failed); with
      // several queues bound, another may hold a copy: the event may exist.
      answer_(entry.done, PublishStatus::kNacked,
              "broker nacked: a queue refused it (full, or failed); another queue it routes to may hold a copy");
    } else if (entry.return_code == kReplyNoRoute) {
      answer_(entry.done, PublishStatus::kRejected, "unroutable: no queue bound for " + entry.routing_key);
    } else if (entry.return_code != 0) {
      answer_(entry.done, PublishStatus::kRejected,
              "returned by the broker (reply code " + std::to_string(entry.return_code) + ")");
    } else {
      answer_(entry.done, PublishStatus::kAcked, {});
    }
  }
  drop_answered();
  return {};
}

bool ConfirmTracker::on_return(std::uint16_t reply_code, std::string_view message_id, std::string_view routing_key) {
  // Answered (timed-out) entries still take their own return, so that it is not pinned on a
  // later retry.
  const std::uint64_t start_tag = std::max(first_tag_, last_returned_tag_ + 1);
  for (std::uint64_t tag = start_tag; tag < next_tag_; ++tag) {
    auto& entry = unconfirmed_[tag - first_tag_];
    if (entry.return_code != 0) continue;
    if (entry.id == message_id && entry.routing_key == routing_key) {
      entry.return_code = reply_code == 0 ? kReplyNoRoute : reply_code;
      last_returned_tag_ = tag;
      return true;
    }
  }
  return false;
}

void ConfirmTracker::expire(Clock::time_point now) {
  for (auto& entry : unconfirmed_) {
    if (now - entry.sent_at < confirm_timeout_) break;
    if (entry.answered) continue;
    entry.answered = true;
    answer_(entry.done, PublishStatus::kTimedOut, expired_detail_);
  }
  drop_answered();
}

std::optional<ConfirmTracker::Clock::time_point> ConfirmTracker::next_expiry() const noexcept {
  if (unconfirmed_.empty()) return std::nullopt;
  return unconfirmed_.front().sent_at + confirm_timeout_;
}

void ConfirmTracker::fail_all(const std::string& detail) {
  for (auto& entry : unconfirmed_) {
    if (entry.answered) continue;
    entry.answered = true;
    answer_(entry.done, PublishStatus::kTimedOut, detail);
  }
  unconfirmed_.clear();
  first_tag_ = next_tag_ = 1;
  last_returned_tag_ = 0;
}

std::size_t ConfirmTracker::unanswered() const noexcept {
  return static_cast<std::size_t>(
      std::count_if(unconfirmed_.begin(), unconfirmed_.end(), [](const Unconfirmed& u) { return !u.answered; }));
}

void ConfirmTracker::drop_answered() noexcept {
  while (!unconfirmed_.empty() && unconfirmed_.front().answered) {
    unconfirmed_.pop_front();
    ++first_tag_;
  }
}

}  // namespace pix::amqp::detail
