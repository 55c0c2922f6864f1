#include "pix/sim/rate.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace pix::sim {

namespace detail {

__extension__ using Uint128 = unsigned __int128;

// due(n) = start + n * 10^9 / rate ns = start + n * 10^15 / micro_rate ns: one multiplication and
// one division in 128 bits, exact for any n a run can reach.
constexpr std::uint64_t kNsPerMicroRateUnit = 1'000'000'000'000'000ULL;

}  // namespace detail

RateSchedule::RateSchedule(double per_second, Clock::time_point start) : start_(start) {
  if (!std::isfinite(per_second) || per_second <= 0) {
    throw std::invalid_argument("rate must be a positive number of requests per second, got " +
                                std::to_string(per_second));
  }
  const double micro = std::round(per_second * 1e6);
  if (micro < 1 || micro > 1e18) {
    throw std::invalid_argument("rate out of range (1e-6 to 1e12 per second): " + std::to_string(per_second));
  }
  micro_rate_ = static_cast<std::uint64_t>(micro);
}

double RateSchedule::per_second() const noexcept {
  return static_cast<double>(micro_rate_) / 1e6;
}

RateSchedule::Clock::time_point RateSchedule::due(std::uint64_t n) const noexcept {
  const detail::Uint128 offset = static_cast<detail::Uint128>(n) * detail::kNsPerMicroRateUnit / micro_rate_;
  const auto max_offset = static_cast<detail::Uint128>(std::numeric_limits<std::int64_t>::max());
  if (offset > max_offset) return Clock::time_point::max();
  return start_ + std::chrono::nanoseconds(static_cast<std::int64_t>(offset));
}

std::uint64_t RateSchedule::due_count(Clock::time_point now) const noexcept {
  if (now < start_) return 0;
  // due(n) <= now  <=>  floor(n * 10^15 / r) <= e  <=>  n * 10^15 < (e + 1) * r, so the count is
  // ceil((e + 1) * r / 10^15).
  const auto elapsed = static_cast<detail::Uint128>(std::chrono::nanoseconds(now - start_).count());
  const detail::Uint128 count =
      ((elapsed + 1) * micro_rate_ + detail::kNsPerMicroRateUnit - 1) / detail::kNsPerMicroRateUnit;
  const auto max_count = static_cast<detail::Uint128>(std::numeric_limits<std::uint64_t>::max());
  return count > max_count ? std::numeric_limits<std::uint64_t>::max() : static_cast<std::uint64_t>(count);
}

OpenLoopQueue::OpenLoopQueue(RateSchedule schedule, std::uint64_t limit, std::uint64_t first, std::uint64_t stride)
    : schedule_(schedule), limit_(limit), first_(first), stride_(stride == 0 ? 1 : stride), next_seq_(first) {}

bool OpenLoopQueue::exhausted() const noexcept {
  return limit_ != 0 && next_seq_ >= limit_;
}

RateSchedule::Clock::time_point OpenLoopQueue::next_due() const noexcept {
  return exhausted() ? RateSchedule::Clock::time_point::max() : schedule_.due(next_seq_);
}

std::optional<Ticket> OpenLoopQueue::take(RateSchedule::Clock::time_point now) noexcept {
  if (exhausted()) return std::nullopt;
  const auto intended = schedule_.due(next_seq_);
  if (intended > now) return std::nullopt;
  Ticket t{next_seq_, intended};
  next_seq_ += stride_;
  ++taken_;
  return t;
}

std::uint64_t OpenLoopQueue::due_untaken(RateSchedule::Clock::time_point now) const noexcept {
  std::uint64_t due = schedule_.due_count(now);
  if (limit_ != 0 && due > limit_) due = limit_;
  // Of the seqs 0..due-1, this queue's are first, first + stride, ...
  const std::uint64_t mine = due > first_ ? (due - first_ + stride_ - 1) / stride_ : 0;
  return mine > taken_ ? mine - taken_ : 0;
}

}  // namespace pix::sim
