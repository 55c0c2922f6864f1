// Which sent message each publisher confirm, nack and basic.return is about, and the verdict it
// makes: the rules that decide whether a payment may be answered 200.
#include "pix/amqp/confirm_tracker.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pix::amqp::detail {
namespace {

using namespace std::chrono_literals;
using broker::PublishResult;
using broker::PublishStatus;
using Clock = ConfirmTracker::Clock;

constexpr auto kTimeout = 5s;
constexpr char kKey[] = "pix.payment.requested";

struct Verdict {
  std::string id;
  PublishStatus status;
  std::string detail;
};

class AmqpConfirmTracker : public ::testing::Test {
 protected:
  /// Sends `id` as the next delivery tag, at t0_.
  void send(const std::string& id, const std::string& routing_key = kKey) { send(id, routing_key, t0_); }
  void send(const std::string& id, const std::string& routing_key, Clock::time_point at) {
    tracker_.on_sent(
        id, routing_key,
        [this, id](PublishResult r) {
          verdicts_.push_back({id, r.status, r.detail});
          ++answers_[id];
        },
        at);
  }

  std::vector<std::string> answered_ids() const {
    std::vector<std::string> ids;
    for (const auto& v : verdicts_) ids.push_back(v.id);
    return ids;
  }

  void expect_each_answered_once() const {
    for (const auto& [id, n] : answers_) EXPECT_EQ(n, 1) << id << " answered " << n << " times";
  }

  const Clock::time_point t0_ = Clock::now();
  std::vector<Verdict> verdicts_;
  std::map<std::string, int> answers_;
  ConfirmTracker tracker_{kTimeout, [](broker::PublishCallback& done, PublishStatus status, std::string detail) {
                            PublishResult r;
                            r.status = status;
                            r.detail = std::move(detail);
                            done(std::move(r));
                          }};
};

TEST_F(AmqpConfirmTracker, AnAckAnswersItsMessageAcked) {
  send("a");
  EXPECT_EQ(tracker_.unanswered(), 1U);
  EXPECT_EQ(tracker_.on_ack(1, false), "");
  ASSERT_EQ(verdicts_.size(), 1U);
  EXPECT_EQ(verdicts_[0].status, PublishStatus::kAcked);
  EXPECT_EQ(verdicts_[0].detail, "");
  EXPECT_TRUE(tracker_.empty());
  EXPECT_EQ(tracker_.unanswered(), 0U);
}

TEST_F(AmqpConfirmTracker, AMultipleAckSettlesEveryTagUpToItAndNoLater) {
  for (const char* id : {"a", "b", "c", "d"}) send(id);
  EXPECT_EQ(tracker_.on_ack(3, true), "");
  EXPECT_EQ(answered_ids(), (std::vector<std::string>{"a", "b", "c"}));
  for (const auto& v : verdicts_) EXPECT_EQ(v.status, PublishStatus::kAcked);
  EXPECT_EQ(tracker_.unanswered(), 1U);
  EXPECT_FALSE(tracker_.empty());
}

TEST_F(AmqpConfirmTracker, ASingleAckOutOfOrderLeavesEarlierTagsWaiting) {
  for (const char* id : {"a", "b", "c"}) send(id);
  EXPECT_EQ(tracker_.on_ack(2, false), "");
  EXPECT_EQ(answered_ids(), (std::vector<std::string>{"b"}));
  EXPECT_EQ(tracker_.unanswered(), 2U);
  // A multiple ack past it answers the others once each, in tag order.
  EXPECT_EQ(tracker_.on_ack(3, true), "");
  EXPECT_EQ(answered_ids(), (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_TRUE(tracker_.empty());
  expect_each_answered_once();
}

TEST_F(AmqpConfirmTracker, ANackAnswersNackedBecauseAnotherQueueMayHoldACopy) {
  for (const char* id : {"a", "b", "c"}) send(id);
  EXPECT_EQ(tracker_.on_nack(1, false), "");
  EXPECT_EQ(tracker_.on_nack(3, true), "");
  EXPECT_EQ(answered_ids(), (std::vector<std::string>{"a", "b", "c"}));
  for (const auto& v : verdicts_) {
    EXPECT_EQ(v.status, PublishStatus::kNacked);
    EXPECT_NE(v.detail.find("another queue it routes to may hold a copy"), std::string::npos) << v.detail;
  }
}

TEST_F(AmqpConfirmTracker, AnUnroutableReturnBeforeTheAckMakesItRejected) {
  send("a", "pix.nowhere");
  send("b");
  EXPECT_TRUE(tracker_.on_return(kReplyNoRoute, "a", "pix.nowhere"));
  EXPECT_TRUE(verdicts_.empty()) << "a return alone is no verdict: the confirm still comes";
  EXPECT_EQ(tracker_.on_ack(2, true), "");
  ASSERT_EQ(verdicts_.size(), 2U);
  EXPECT_EQ(verdicts_[0].status, PublishStatus::kRejected);
  EXPECT_EQ(verdicts_[0].detail, "unroutable: no queue bound for pix.nowhere");
  EXPECT_EQ(verdicts_[1].status, PublishStatus::kAcked);
}

TEST_F(AmqpConfirmTracker, AReturnWithAnotherReplyCodeNamesIt) {
  send("a");
  EXPECT_TRUE(tracker_.on_return(313, "a", kKey));
  EXPECT_EQ(tracker_.on_ack(1, false), "");
  ASSERT_EQ(verdicts_.size(), 1U);
  EXPECT_EQ(verdicts_[0].status, PublishStatus::kRejected);
  EXPECT_EQ(verdicts_[0].detail, "returned by the broker (reply code 313)");
}

TEST_F(AmqpConfirmTracker, AReturnWithoutAReplyCodeCountsAsUnroutable) {
  send("a");
  EXPECT_TRUE(tracker_.on_return(0, "a", kKey));
  EXPECT_EQ(tracker_.on_ack(1, false), "");
  ASSERT_EQ(verdicts_.size(), 1U);
  EXPECT_EQ(verdicts_[0].detail, std::string("unroutable: no queue bound for ") + kKey);
}

TEST_F(AmqpConfirmTracker, ANackWinsOverAReturn) {
  send("a");
  EXPECT_TRUE(tracker_.on_return(kReplyNoRoute, "a", kKey));
  EXPECT_EQ(tracker_.on_nack(1, false), "");
  ASSERT_EQ(verdicts_.size(), 1U);
  EXPECT_EQ(verdicts_[0].status, PublishStatus::kNacked);
}

TEST_F(AmqpConfirmTracker, EachReturnGoesToTheNextMessageWithItsIdAndRoutingKey) {
  send("a", "pix.other");  // same id, another routing key: never matched
  send("a");               // tag 2
  send("b");               // tag 3
  send("a");               // tag 4, a retry of tag 2
  EXPECT_TRUE(tracker_.on_return(kReplyNoRoute, "a", kKey));
  EXPECT_TRUE(tracker_.on_return(kReplyNoRoute, "a", kKey));
  EXPECT_FALSE(tracker_.on_return(kReplyNoRoute, "a", kKey)) << "both messages were returned already";
  EXPECT_EQ(tracker_.on_ack(4, true), "");
  ASSERT_EQ(verdicts_.size(), 4U);
  EXPECT_EQ(verdicts_[0].status, PublishStatus::kAcked);
  EXPECT_EQ(verdicts_[1].status, PublishStatus::kRejected);
  EXPECT_EQ(verdicts_[2].status, PublishStatus::kAcked);
  EXPECT_EQ(verdicts_[3].status, PublishStatus::kRejected);
}

TEST_F(AmqpConfirmTracker, AReturnMatchingNoMessageIsReportedAndChangesNothing) {
  send("a");
  EXPECT_FALSE(tracker_.on_return(kReplyNoRoute, "zzz", kKey));
  EXPECT_FALSE(tracker_.on_return(kReplyNoRoute, "", kKey));
  EXPECT_EQ(tracker_.on_ack(1, false), "");
  ASSERT_EQ(verdicts_.size(), 1U);
  EXPECT_EQ(verdicts_[0].status, PublishStatus::kAcked);
}

TEST_F(AmqpConfirmTracker, AConfirmForATagNeverSentAnswersNothingAndSaysWhy) {
  send("a");
  const std::string acked = tracker_.on_ack(7, false);
  EXPECT_EQ(acked, "the broker acked delivery tag 7, which was never sent (next is 2)");
  EXPECT_NE(tracker_.on_ack(0, true), "") << "delivery tags start at 1";
  EXPECT_EQ(tracker_.on_nack(2, true), "the broker nacked delivery tag 2, which was never sent (next is 2)");
  EXPECT_TRUE(verdicts_.empty()) << "a confirm that cannot be trusted must not ack anything";
  EXPECT_EQ(tracker_.unanswered(), 1U);
}

TEST_F(AmqpConfirmTracker, MessagesWithoutAConfirmExpireTimedOutAtTheirDeadline) {
  send("a", kKey, t0_);
  send("b", kKey, t0_ + 1s);
  EXPECT_EQ(tracker_.next_expiry(), t0_ + kTimeout);
  tracker_.expire(t0_ + kTimeout - 1ms);
  EXPECT_TRUE(verdicts_.empty());
  tracker_.expire(t0_ + kTimeout);
  ASSERT_EQ(verdicts_.size(), 1U);
  EXPECT_EQ(verdicts_[0].id, "a");
  EXPECT_EQ(verdicts_[0].status, PublishStatus::kTimedOut);
  EXPECT_EQ(verdicts_[0].detail, "no publisher confirm within 5000 ms; the event may have been stored");
  EXPECT_EQ(tracker_.next_expiry(), t0_ + 1s + kTimeout);
  EXPECT_EQ(tracker_.unanswered(), 1U);
}

TEST_F(AmqpConfirmTracker, AConfirmAfterTheExpiryIsIgnored) {
  send("a", kKey, t0_);
  send("b", kKey, t0_ + 1s);
  tracker_.expire(t0_ + kTimeout);
  EXPECT_EQ(tracker_.on_ack(1, false), "") << "a late confirm is no disagreement with the broker";
  EXPECT_EQ(tracker_.on_ack(2, true), "");
  EXPECT_EQ(answered_ids(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(verdicts_[0].status, PublishStatus::kTimedOut);
  EXPECT_EQ(verdicts_[1].status, PublishStatus::kAcked);
  expect_each_answered_once();
}

TEST_F(AmqpConfirmTracker, AnAnsweredMessageDoesNotExpireAgain) {
  send("a", kKey, t0_);
  send("b", kKey, t0_);
  EXPECT_EQ(tracker_.on_ack(2, false), "");
  tracker_.expire(t0_ + kTimeout);
  EXPECT_EQ(answered_ids(), (std::vector<std::string>{"b", "a"}));
  EXPECT_TRUE(tracker_.empty());
  EXPECT_FALSE(tracker_.next_expiry().has_value());
  expect_each_answered_once();
}

TEST_F(AmqpConfirmTracker, LosingTheChannelAnswersEveryUnansweredMessageMayExist) {
  for (const char* id : {"a", "b", "c"}) send(id);
  EXPECT_EQ(tracker_.on_ack(2, false), "");
  tracker_.fail_all("connection lost before confirm; the event may have been stored (reset)");
  EXPECT_EQ(answered_ids(), (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ(verdicts_[1].status, PublishStatus::kTimedOut);
  EXPECT_EQ(verdicts_[1].detail, "connection lost before confirm; the event may have been stored (reset)");
  EXPECT_EQ(verdicts_[2].status, PublishStatus::kTimedOut);
  EXPECT_TRUE(tracker_.empty());
  EXPECT_EQ(tracker_.unanswered(), 0U);
  expect_each_answered_once();
}

TEST_F(AmqpConfirmTracker, TheNextChannelNumbersItsPublishesFromOneAgain) {
  send("a");
  send("b");
  EXPECT_TRUE(tracker_.on_return(kReplyNoRoute, "b", kKey));
  tracker_.fail_all("lost");
  EXPECT_EQ(tracker_.next_tag(), 1U);
  send("c");
  EXPECT_TRUE(tracker_.on_return(kReplyNoRoute, "c", kKey)) << "returns on the old channel must not hide this one";
  EXPECT_EQ(tracker_.on_ack(1, false), "");
  ASSERT_EQ(verdicts_.size(), 3U);
  EXPECT_EQ(verdicts_[2].id, "c");
  EXPECT_EQ(verdicts_[2].status, PublishStatus::kRejected);
  EXPECT_NE(tracker_.on_ack(2, false), "") << "tag 2 was sent on the old channel only";
}

TEST_F(AmqpConfirmTracker, EveryMessageIsAnsweredExactlyOnceWhateverComesLate) {
  for (const char* id : {"a", "b", "c", "d", "e", "f"}) send(id, kKey, t0_);
  send("g", kKey, t0_ + 10s);
  EXPECT_EQ(tracker_.on_ack(2, false), "");
  EXPECT_EQ(tracker_.on_nack(4, false), "");
  EXPECT_EQ(tracker_.on_ack(3, true), "");
  EXPECT_EQ(tracker_.on_ack(2, false), "");
  tracker_.expire(t0_ + kTimeout);
  EXPECT_EQ(tracker_.on_ack(6, true), "");
  EXPECT_EQ(tracker_.on_nack(5, true), "");
  tracker_.fail_all("lost");
  tracker_.fail_all("lost again");
  EXPECT_EQ(answered_ids(), (std::vector<std::string>{"b", "d", "a", "c", "e", "f", "g"}));
  EXPECT_EQ(verdicts_[1].status, PublishStatus::kNacked);
  EXPECT_EQ(verdicts_[4].status, PublishStatus::kTimedOut);
  EXPECT_EQ(verdicts_[6].detail, "lost");
  expect_each_answered_once();
}

}  // namespace
}  // namespace pix::amqp::detail
