// The confirm publisher's readiness probes without a socket: answers matched in order, timeouts
// that keep their place, a refused declare answering every one behind it, the channel re-opened.
#include <gtest/gtest.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "pix/amqp/probe_queue.hpp"
#include "pix/util/invariant.hpp"

namespace pix::amqp::detail {
namespace {

using namespace std::chrono_literals;
using Clock = ProbeQueue::Clock;

constexpr amqp_channel_t kChannel = 2;

struct Answer {
  bool ready = false;
  std::string detail;
};

class ProbeQueueTest : public ::testing::Test {
 protected:
  broker::ProbeCallback record(std::optional<Answer>& into) {
    return [&into](bool ready, std::string detail) {
      EXPECT_FALSE(into.has_value()) << "a probe answered twice";
      into = Answer{ready, std::move(detail)};
    };
  }
  void arrive(amqp_method_number_t id, void* decoded = nullptr) {
    amqp_method_t m{id, decoded};
    probes_.on_method(m);
  }
  std::size_t sent_declares() const {
    std::size_t n = 0;
    for (const auto id : sent_) n += id == AMQP_EXCHANGE_DECLARE_METHOD;
    return n;
  }

  const Clock::time_point t0_ = Clock::now();
  std::vector<amqp_method_number_t> sent_;
  ProbeQueue probes_{"pix", kChannel, 2000ms, [this](amqp_channel_t channel, amqp_method_number_t id, void*) {
                       EXPECT_EQ(channel, kChannel);
                       sent_.push_back(id);
                     }};
};

TEST_F(ProbeQueueTest, NothingIsSentBeforeTheChannelIsOpenAndEachProbeOnceAfter) {
  std::optional<Answer> a;
  probes_.add(record(a), t0_);
  probes_.send();
  EXPECT_TRUE(sent_.empty());
  probes_.on_channel_open();
  probes_.send();
  probes_.send();
  EXPECT_EQ(sent_declares(), 1u);
  EXPECT_FALSE(a.has_value());
}

TEST_F(ProbeQueueTest, DeclareOksAnswerTheProbesReadyInOrder) {
  probes_.on_channel_open();
  std::optional<Answer> first, second;
  probes_.add(record(first), t0_);
  probes_.add(record(second), t0_ + 1ms);
  probes_.send();
  arrive(AMQP_EXCHANGE_DECLARE_OK_METHOD);
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->ready);
  EXPECT_FALSE(second.has_value());
  arrive(AMQP_EXCHANGE_DECLARE_OK_METHOD);
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(second->ready);
  EXPECT_FALSE(probes_.next_expiry().has_value());
}

TEST_F(ProbeQueueTest, ATimedOutProbeKeepsItsPlaceSoTheLateAnswerIsNotGivenToTheNextOne) {
  probes_.on_channel_open();
  std::optional<Answer> slow, next;
  probes_.add(record(slow), t0_);
  probes_.send();
  EXPECT_EQ(probes_.next_expiry(), t0_ + 2000ms);
  probes_.expire(t0_ + 2000ms);
  ASSERT_TRUE(slow.has_value());
  EXPECT_FALSE(slow->ready);
  EXPECT_NE(slow->detail.find("no answer from RabbitMQ within 2000 ms"), std::string::npos) << slow->detail;

  probes_.add(record(next), t0_ + 2001ms);
  probes_.send();
  arrive(AMQP_EXCHANGE_DECLARE_OK_METHOD);  // the slow probe's late answer
  EXPECT_FALSE(next.has_value()) << "the late answer was taken for the next probe's";
  arrive(AMQP_EXCHANGE_DECLARE_OK_METHOD);
  ASSERT_TRUE(next.has_value());
  EXPECT_TRUE(next->ready);
}

TEST_F(ProbeQueueTest, AMissingExchangeAnswersEverySentProbeAndReopensTheChannel) {
  probes_.on_channel_open();
  std::optional<Answer> first, second, later;
  probes_.add(record(first), t0_);
  probes_.add(record(second), t0_);
  probes_.send();
  amqp_channel_close_t close{};
  close.reply_code = 404;
  const std::string text = "NOT_FOUND - no exchange 'pix' in vhost '/'";
  close.reply_text = amqp_bytes_t{text.size(), const_cast<char*>(text.data())};
  sent_.clear();
  arrive(AMQP_CHANNEL_CLOSE_METHOD, &close);
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_FALSE(first->ready);
  EXPECT_NE(first->detail.find("exchange 'pix' does not exist: 404 NOT_FOUND"), std::string::npos) << first->detail;
  EXPECT_EQ(second->detail, first->detail);
  EXPECT_EQ(sent_, (std::vector<amqp_method_number_t>{AMQP_CHANNEL_CLOSE_OK_METHOD, AMQP_CHANNEL_OPEN_METHOD}));

  // Until the broker confirms the re-open, a new probe waits.
  sent_.clear();
  probes_.add(record(later), t0_);
  probes_.send();
  EXPECT_TRUE(sent_.empty());
  arrive(AMQP_CHANNEL_OPEN_OK_METHOD);
  probes_.send();
  EXPECT_EQ(sent_declares(), 1u);
}

TEST_F(ProbeQueueTest, BlockedPublishersFailOnlyTheUnsentProbesAndALostConnectionAllOfThem) {
  probes_.on_channel_open();
  std::optional<Answer> sent, unsent;
  probes_.add(record(sent), t0_);
  probes_.send();
  probes_.add(record(unsent), t0_);
  probes_.fail_unsent("RabbitMQ is blocking publishers");
  ASSERT_TRUE(unsent.has_value());
  EXPECT_EQ(unsent->detail, "RabbitMQ is blocking publishers");
  EXPECT_FALSE(sent.has_value());
  probes_.fail_all("RabbitMQ connection lost");
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->detail, "RabbitMQ connection lost");
  EXPECT_FALSE(probes_.next_expiry().has_value());
}

TEST_F(ProbeQueueTest, AnAnswerWithNoDeclareOutIsABrokenInvariantNotAProbeAnswer) {
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  const auto before = util::invariant_violations();
  arrive(AMQP_EXCHANGE_DECLARE_OK_METHOD);
  spdlog::set_level(level);
  EXPECT_EQ(util::invariant_violations(), before + 1);
}

TEST_F(ProbeQueueTest, AProbeCallbackThatThrowsDoesNotStopTheOthersAnswers) {
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  probes_.on_channel_open();
  std::optional<Answer> after;
  probes_.add([](bool, std::string) { throw std::runtime_error("caller bug"); }, t0_);
  probes_.add(record(after), t0_);
  probes_.send();
  arrive(AMQP_EXCHANGE_DECLARE_OK_METHOD);
  arrive(AMQP_EXCHANGE_DECLARE_OK_METHOD);
  spdlog::set_level(level);
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(after->ready);
}

}  // namespace
}  // namespace pix::amqp::detail
