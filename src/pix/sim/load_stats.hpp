#pragma once
/// @file What one shard of a run counts, and how the shards' counts add up: to the progress line
/// while the run goes, to the LoadResult at its end. Internal to sim.

#include <array>
#include <cstdint>
#include <map>
#include <vector>

#include "pix/sim/histogram.hpp"
#include "pix/sim/load_engine.hpp"
#include "pix/sim/load_progress.hpp"

namespace pix::sim::detail {

/// @brief What a shard has counted; written by the shard's thread, read by the monitor, under a mutex.
struct Stats {
  std::uint64_t sent = 0;
  std::uint64_t completed = 0;
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;  // non-2xx answers and transport errors, for the progress line
  std::uint64_t unsent = 0;
  std::uint64_t connections_opened = 0;
  std::uint64_t open_connections = 0;
  std::uint64_t peak_connections = 0;
  std::uint64_t reconnects = 0;
  std::map<int, std::uint64_t> status_counts;
  std::array<std::uint64_t, kTransportErrorKinds> errors{};
  LatencyHistogram latency_ok;
  LatencyHistogram latency_all;
  LatencyHistogram send_delay;
  std::vector<Answer> answers;
};

/// Adds a shard's counts to the progress line's totals.
void add_to(ProgressSnapshot& totals, const Stats& shard);

/// Adds a shard's counts to the run's result, moving its answers (unsorted) to the result's end.
/// Peak connections add up too: each shard's peak is its own connections'.
void add_to(LoadResult& result, Stats& shard);

}  // namespace pix::sim::detail
