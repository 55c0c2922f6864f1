#pragma once
/// @file The live line run_load prints on stderr once a second: sent, ok, errors, the rate of the
/// last second and the p99 so far. Internal to sim.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "pix/sim/histogram.hpp"

namespace pix::sim::detail {

/// @brief What the line shows, summed over the shards.
struct ProgressSnapshot {
  std::uint64_t sent = 0;
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;  ///< non-2xx answers and transport errors
  std::uint64_t completed = 0;
  LatencyHistogram latency_all;
};

/// @brief Prints the line, rewriting it in place on a terminal and one line per second otherwise.
class ProgressLine {
 public:
  using Clock = std::chrono::steady_clock;

  /// `tty`: `out` is a terminal (the line is redrawn with \r and cleared to its end).
  ProgressLine(std::FILE* out, bool tty, Clock::time_point start);

  /// One line for `now`; the rate is over the time since the previous line.
  void print(Clock::time_point now, const ProgressSnapshot& totals);

  /// Ends a redrawn line with a newline, so what follows starts on its own line.
  void finish();

 private:
  std::FILE* out_;
  bool tty_;
  Clock::time_point start_;
  Clock::time_point last_;
  std::uint64_t last_completed_ = 0;
  bool printed_ = false;
};

/// A latency as the line shows it: `850us`, `12.3ms`, `1.25s`.
std::string short_latency(std::chrono::nanoseconds d);

}  // namespace pix::sim::detail
