#include "pix/amqp/probe_queue.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "pix/amqp/connection.hpp"
#include "pix/broker/guarded_callback.hpp"
#include "pix/util/invariant.hpp"

namespace pix::amqp::detail {

void answer_probe(broker::ProbeCallback& done, bool ready, std::string detail) noexcept {
  if (!done) return;
  broker::guarded("amqp probe callback", [&] { done(ready, std::move(detail)); });
}

ProbeQueue::ProbeQueue(std::string exchange, amqp_channel_t channel, std::chrono::milliseconds timeout,
                       AppendMethod append_method)
    : exchange_(std::move(exchange)), channel_(channel), timeout_(timeout), append_method_(std::move(append_method)) {}

void ProbeQueue::add(broker::ProbeCallback done, Clock::time_point asked_at) {
  probes_.push_back(Pending{std::move(done), asked_at});
}

void ProbeQueue::send() {
  if (!channel_open_) return;
  for (auto& p : probes_) {
    if (p.sent || p.answered) continue;
    amqp_exchange_declare_t declare{};
    declare.exchange = bytes_of(exchange_);
    declare.type = amqp_empty_bytes;
    declare.passive = 1;
    declare.arguments = amqp_empty_table;
    append_method_(channel_, AMQP_EXCHANGE_DECLARE_METHOD, &declare);
    p.sent = true;
  }
}

void ProbeQueue::on_method(const amqp_method_t& method) {
  switch (method.id) {
    case AMQP_EXCHANGE_DECLARE_OK_METHOD: {
      const auto it = std::find_if(probes_.begin(), probes_.end(), [](const Pending& p) { return p.sent; });
      // Only a declare we sent is ever answered: an answer with none out means the order is lost.
      PIX_BUG(it != probes_.end(), "amqp publisher: exchange.declare-ok on the probe channel with no declare sent");
      if (it == probes_.end()) return;
      if (!it->answered) answer_probe(it->done, true, {});
      probes_.erase(it);
      return;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
      on_channel_close(*static_cast<const amqp_channel_close_t*>(method.decoded));
      return;
    case AMQP_CHANNEL_OPEN_OK_METHOD:
      channel_open_ = true;
      return;
    default:
      spdlog::debug("amqp publisher: ignoring {} on the probe channel", amqp_method_name(method.id));
      return;
  }
}

void ProbeQueue::on_channel_close(const amqp_channel_close_t& close) {
  const std::string code_and_text = std::to_string(close.reply_code) + " " + string_of(close.reply_text);
  const std::string why = close.reply_code == 404 ? "exchange '" + exchange_ + "' does not exist: " + code_and_text
                                                  : "probe channel closed: " + code_and_text;
  // Declares sent after the failing one were discarded by the closing channel: each gets the
  // same answer.
  for (auto it = probes_.begin(); it != probes_.end();) {
    if (!it->sent) {
      ++it;
      continue;
    }
    if (!it->answered) answer_probe(it->done, false, why);
    it = probes_.erase(it);
  }
  amqp_channel_close_ok_t ok{};
  append_method_(channel_, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
  amqp_channel_open_t open{};
  open.out_of_band = amqp_empty_bytes;
  append_method_(channel_, AMQP_CHANNEL_OPEN_METHOD, &open);
  channel_open_ = false;
}

void ProbeQueue::expire(Clock::time_point now) {
  for (auto it = probes_.begin(); it != probes_.end();) {
    if (!it->answered && now - it->asked_at >= timeout_) {
      answer_probe(it->done, false, "no answer from RabbitMQ within " + std::to_string(timeout_.count()) + " ms");
      it->answered = true;
    }
    // An unsent probe has no answer coming to keep its place for.
    if (it->answered && !it->sent) {
      it = probes_.erase(it);
    } else {
      ++it;
    }
  }
}

std::optional<ProbeQueue::Clock::time_point> ProbeQueue::next_expiry() const noexcept {
  std::optional<Clock::time_point> due;
  for (const auto& p : probes_) {
    if (!p.answered && (!due || p.asked_at + timeout_ < *due)) due = p.asked_at + timeout_;
  }
  return due;
}

void ProbeQueue::fail_unsent(const std::string& detail) {
  for (auto it = probes_.begin(); it != probes_.end();) {
    if (it->sent) {
      ++it;
      continue;
    }
    if (!it->answered) answer_probe(it->done, false, detail);
    it = probes_.erase(it);
  }
}

void ProbeQueue::fail_all(const std::string& detail) {
  for (auto& p : probes_) {
    if (!p.answered) answer_probe(p.done, false, detail);
  }
  probes_.clear();
}

}  // namespace pix::amqp::detail
