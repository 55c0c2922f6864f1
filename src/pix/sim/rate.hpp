#pragma once
/// @file Open-loop pacing: when each request is meant to be sent, independent of when the server
/// answers. Latency is measured from that intended time, so a server that stalls is charged for
/// every request it kept waiting, not only for the few in flight (no coordinated omission).

#include <chrono>
#include <cstdint>
#include <optional>

namespace pix::sim {

/// @brief The intended send times of a constant-rate stream: request n is due at
/// start + n / rate, computed from n each time (never accumulated), so it does not drift.
class RateSchedule {
 public:
  using Clock = std::chrono::steady_clock;

  /// `per_second` > 0; rates are kept to a millionth of a request per second (0.5, 3, 2.5 and
  /// 10000 are all exact). Throws std::invalid_argument for a rate that is not positive and finite.
  RateSchedule(double per_second, Clock::time_point start);

  /// When request `n` (0, 1, 2...) is due: start + floor(n * 1e9 / rate) ns, exactly.
  Clock::time_point due(std::uint64_t n) const noexcept;
  /// How many requests are due at or before `now` (0 before start): the n with due(n) <= now.
  std::uint64_t due_count(Clock::time_point now) const noexcept;

  Clock::time_point start() const noexcept { return start_; }
  double per_second() const noexcept;

 private:
  Clock::time_point start_;
  std::uint64_t micro_rate_;  // requests per 10^6 seconds
};

/// @brief One request of an open-loop run: its sequence number and when it was meant to be sent.
struct Ticket {
  std::uint64_t seq = 0;
  RateSchedule::Clock::time_point intended;
};

/// @brief Hands out the tickets of a schedule in order, each once, as they fall due.
///
/// A ticket that is due but not yet taken (no connection was free) keeps its intended time, so the
/// wait shows in its latency. `stride` and `first` split one schedule between threads: thread k of
/// T takes seq k, k+T, k+2T... `limit` (0 = none) ends the stream after seq limit-1.
class OpenLoopQueue {
 public:
  explicit OpenLoopQueue(RateSchedule schedule, std::uint64_t limit = 0, std::uint64_t first = 0,
                         std::uint64_t stride = 1);

  /// The next ticket if it is due at `now`; nothing if it is not yet due or the stream is exhausted.
  std::optional<Ticket> take(RateSchedule::Clock::time_point now) noexcept;
  /// When the next ticket is due (time_point::max() once exhausted).
  RateSchedule::Clock::time_point next_due() const noexcept;
  /// Tickets due at `now` and not yet taken: the backlog waiting for a connection.
  std::uint64_t due_untaken(RateSchedule::Clock::time_point now) const noexcept;
  /// Every ticket of the stream has been taken (only with a limit).
  bool exhausted() const noexcept;
  /// Tickets taken so far.
  std::uint64_t taken() const noexcept { return taken_; }

  const RateSchedule& schedule() const noexcept { return schedule_; }

 private:
  RateSchedule schedule_;
  std::uint64_t limit_;
  std::uint64_t first_;
  std::uint64_t stride_;
  std::uint64_t next_seq_;
  std::uint64_t taken_ = 0;
};

/// Latency of an open-loop request: from when it was meant to be sent, not when it was, so time
/// spent waiting for a free connection behind a slow server counts.
inline std::chrono::nanoseconds open_loop_latency(const Ticket& ticket,
                                                  RateSchedule::Clock::time_point completed) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(completed - ticket.intended);
}

}  // namespace pix::sim
