#include "pix/sim/load_stats.hpp"

#include <algorithm>
#include <iterator>

namespace pix::sim {

namespace detail {

void add_to(ProgressSnapshot& totals, const Stats& shard) {
  totals.sent += shard.sent;
  totals.ok += shard.ok;
  totals.failed += shard.failed;
  totals.completed += shard.completed;
  totals.latency_all.merge(shard.latency_all);
}

void add_to(LoadResult& result, Stats& shard) {
  result.sent += shard.sent;
  result.completed += shard.completed;
  result.unsent += shard.unsent;
  result.connections_opened += shard.connections_opened;
  result.peak_connections += shard.peak_connections;
  result.reconnects += shard.reconnects;
  for (const auto& [status, n] : shard.status_counts) result.status_counts[status] += n;
  for (std::size_t k = 0; k < kTransportErrorKinds; ++k) result.errors[k] += shard.errors[k];
  result.latency_ok.merge(shard.latency_ok);
  result.latency_all.merge(shard.latency_all);
  result.send_delay.merge(shard.send_delay);
  std::move(shard.answers.begin(), shard.answers.end(), std::back_inserter(result.answers));
}

}  // namespace detail

std::uint64_t LoadResult::ok() const noexcept {
  std::uint64_t n = 0;
  for (const auto& [status, count] : status_counts) {
    if (status >= 200 && status < 300) n += count;
  }
  return n;
}

std::uint64_t LoadResult::server_errors() const noexcept {
  std::uint64_t n = 0;
  for (const auto& [status, count] : status_counts) {
    if (status >= 500 && status < 600) n += count;
  }
  return n;
}

std::uint64_t LoadResult::transport_errors() const noexcept {
  std::uint64_t n = 0;
  for (const auto count : errors) n += count;
  return n;
}

double LoadResult::throughput() const noexcept {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  return seconds > 0 ? static_cast<double>(completed) / seconds : 0.0;
}

}  // namespace pix::sim
