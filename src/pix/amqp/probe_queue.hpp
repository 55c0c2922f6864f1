#pragma once
/// @file The confirm publisher's readiness probes: a passive exchange.declare each on the probe
/// channel, answered in order, with their timeouts and the channel's re-opening after a refusal.
/// No socket: frames go out through the publisher's `AppendMethod`.

#include <amqp.h>
#include <amqp_framing.h>

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "pix/broker/publisher.hpp"

namespace pix::amqp::detail {

/// Calls a user's probe callback; an exception it throws is logged and counted, not propagated
/// into the publisher's thread (broker::guarded).
void answer_probe(broker::ProbeCallback& done, bool ready, std::string detail) noexcept;

/// @brief The probes asked of one connection's probe channel, oldest first.
///
/// The broker answers a channel's methods in order, so exchange.declare-ok answers the oldest
/// sent probe, and a channel.close (404: no such exchange) every sent one, since the closing
/// channel discards the declares behind the failing one. A probe answered by its timeout keeps
/// its place until its late answer arrives, so that the next answer goes to the right probe.
class ProbeQueue {
 public:
  using Clock = std::chrono::steady_clock;
  /// Queues one method frame for the socket on `channel`.
  using AppendMethod = std::function<void(amqp_channel_t channel, amqp_method_number_t id, void* method)>;

  ProbeQueue(std::string exchange, amqp_channel_t channel, std::chrono::milliseconds timeout,
             AppendMethod append_method);

  /// A probe asked at `asked_at`; sent by the next send().
  void add(broker::ProbeCallback done, Clock::time_point asked_at);
  /// A new connection opened the probe channel: send() may send again.
  void on_channel_open() noexcept { channel_open_ = true; }
  /// Sends a passive exchange.declare for every probe not sent yet, while the channel is open.
  void send();
  /// Handles a method that arrived on the probe channel.
  void on_method(const amqp_method_t& method);
  /// Answers "not ready" every probe asked `timeout` ago or more that has no answer yet.
  void expire(Clock::time_point now);
  /// When expire() next has something to do, if anything waits for an answer.
  std::optional<Clock::time_point> next_expiry() const noexcept;
  /// Answers the probes not sent yet (the broker blocks publishers): sent ones still get theirs.
  void fail_unsent(const std::string& detail);
  /// Answers every probe not answered yet and forgets them all (the connection is gone).
  void fail_all(const std::string& detail);

 private:
  struct Pending {
    broker::ProbeCallback done;
    Clock::time_point asked_at;
    bool sent = false;      ///< an exchange.declare for it is on the wire; answers come in order
    bool answered = false;  ///< timed out already; its late answer must still be consumed in order
  };

  void on_channel_close(const amqp_channel_close_t& close);

  const std::string exchange_;
  const amqp_channel_t channel_;
  const std::chrono::milliseconds timeout_;
  const AppendMethod append_method_;
  std::deque<Pending> probes_;
  bool channel_open_ = false;
};

}  // namespace pix::amqp::detail
