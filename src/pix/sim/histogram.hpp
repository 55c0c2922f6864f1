#pragma once
/// @file A latency histogram for the load generator: HdrHistogram's log-linear bucketing, fixed
/// memory, O(1) recording without allocation, good to better than 1% relative from 1 µs to 60 s.

#include <chrono>
#include <cstdint>
#include <vector>

namespace pix::sim {

/// @brief Latencies in nanoseconds, bucketed so that every bucket is at most 1/128 (0.78%) of its
/// values wide: exact below 256 ns, then 128 linear sub-buckets per power of two up to 2^36 ns
/// (about 68.7 s). Larger values are recorded in the top bucket and counted by `saturated()`;
/// negative ones as 0. `min()`, `max()` and `mean()` are exact. Not thread-safe: keep one per
/// thread and `merge` them.
class LatencyHistogram {
 public:
  /// Largest value told apart from larger ones (2^36 - 1 ns, about 68.7 s).
  static constexpr std::int64_t kHighestTrackableNs = (std::int64_t{1} << 36) - 1;

  /// Allocates the buckets once (about 30 KiB); recording never allocates.
  LatencyHistogram();

  /// Adds one value. O(1).
  void record(std::chrono::nanoseconds value) noexcept;
  /// Adds every value recorded in `other`, as if they had been recorded here.
  void merge(const LatencyHistogram& other) noexcept;
  /// Forgets everything recorded.
  void reset() noexcept;

  /// Number of values recorded.
  std::uint64_t count() const noexcept { return count_; }
  /// Values larger than kHighestTrackableNs (kept exactly in `max()`, bucketed at the top).
  std::uint64_t saturated() const noexcept { return saturated_; }
  /// Smallest value recorded (0 when empty).
  std::chrono::nanoseconds min() const noexcept;
  /// Largest value recorded (0 when empty).
  std::chrono::nanoseconds max() const noexcept;
  /// Arithmetic mean of the values recorded (0 when empty).
  std::chrono::nanoseconds mean() const noexcept;

  /// The value below or at which `percentile` percent of the values fall (`percentile` in
  /// [0, 100], e.g. 50, 99, 99.9): the upper bound of the bucket holding that rank, clamped to
  /// `max()`, so the answer is never below the true value and at most 0.78% above it, and
  /// `value_at_percentile(100) == max()`. 0 when empty.
  std::chrono::nanoseconds value_at_percentile(double percentile) const noexcept;

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t saturated_ = 0;
  std::int64_t min_ = 0;
  std::int64_t max_ = 0;
  // Sum of the exact values, for the mean; 2^64 ns is 584 years of latency, so it does not wrap.
  std::uint64_t sum_ = 0;
};

}  // namespace pix::sim
