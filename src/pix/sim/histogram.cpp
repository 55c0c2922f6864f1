#include "pix/sim/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace pix::sim {

namespace detail {

// HdrHistogram's layout with a unit of 1 ns and 256 sub-buckets: values below 256 get a bucket
// each; above, bucket b covers [128 * 2^b, 256 * 2^b) in 128 slices of 2^b, so a slice is never
// wider than 1/128 of the values in it.
constexpr int kSubBucketHalfBits = 7;
constexpr std::uint64_t kSubBucketHalfCount = std::uint64_t{1} << kSubBucketHalfBits;
constexpr std::uint64_t kSubBucketMask = (kSubBucketHalfCount << 1) - 1;
constexpr int kLeadingZeroBase = 64 - kSubBucketHalfBits - 1;

constexpr std::size_t bucket_count() {
  std::uint64_t smallest_untrackable = kSubBucketHalfCount << 1;
  std::size_t buckets = 1;
  while (smallest_untrackable <= static_cast<std::uint64_t>(LatencyHistogram::kHighestTrackableNs)) {
    smallest_untrackable <<= 1;
    ++buckets;
  }
  return buckets;
}

constexpr std::size_t kCountsLength = (bucket_count() + 1) * kSubBucketHalfCount;

constexpr std::size_t index_of(std::uint64_t value) {
  const int bucket = kLeadingZeroBase - std::countl_zero(value | kSubBucketMask);
  const std::uint64_t sub_bucket = value >> bucket;
  return ((static_cast<std::size_t>(bucket) + 1) << kSubBucketHalfBits) + sub_bucket - kSubBucketHalfCount;
}

/// The largest value that lands in the slot `index`.
constexpr std::uint64_t highest_equivalent(std::size_t index) {
  int bucket = static_cast<int>(index >> kSubBucketHalfBits) - 1;
  std::uint64_t sub_bucket = (index & (kSubBucketHalfCount - 1)) + kSubBucketHalfCount;
  if (bucket < 0) {
    sub_bucket -= kSubBucketHalfCount;
    bucket = 0;
  }
  return (sub_bucket << bucket) + (std::uint64_t{1} << bucket) - 1;
}

static_assert(index_of(0) == 0 && index_of(255) == 255 && index_of(256) == 256);
static_assert(index_of(LatencyHistogram::kHighestTrackableNs) == kCountsLength - 1);
static_assert(highest_equivalent(kCountsLength - 1) == LatencyHistogram::kHighestTrackableNs);
static_assert(highest_equivalent(index_of(1000)) >= 1000 && highest_equivalent(index_of(1000)) < 1008);

}  // namespace detail

LatencyHistogram::LatencyHistogram() : counts_(detail::kCountsLength, 0) {}

void LatencyHistogram::record(std::chrono::nanoseconds value) noexcept {
  const std::int64_t ns = std::max<std::int64_t>(value.count(), 0);
  std::int64_t bucketed = ns;
  if (ns > kHighestTrackableNs) {
    bucketed = kHighestTrackableNs;
    ++saturated_;
  }
  ++counts_[detail::index_of(static_cast<std::uint64_t>(bucketed))];
  if (count_ == 0) {
    min_ = ns;
    max_ = ns;
  } else {
    min_ = std::min(min_, ns);
    max_ = std::max(max_, ns);
  }
  ++count_;
  sum_ += static_cast<std::uint64_t>(ns);
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  if (count_ == 0) {
    min_ = other.min_;
    max_ = other.max_;
  } else {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  count_ += other.count_;
  saturated_ += other.saturated_;
  sum_ += other.sum_;
}

void LatencyHistogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  saturated_ = 0;
  min_ = 0;
  max_ = 0;
  sum_ = 0;
}

std::chrono::nanoseconds LatencyHistogram::min() const noexcept {
  return std::chrono::nanoseconds(min_);
}

std::chrono::nanoseconds LatencyHistogram::max() const noexcept {
  return std::chrono::nanoseconds(max_);
}

std::chrono::nanoseconds LatencyHistogram::mean() const noexcept {
  if (count_ == 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<std::int64_t>(sum_ / count_));
}

std::chrono::nanoseconds LatencyHistogram::value_at_percentile(double percentile) const noexcept {
  if (count_ == 0) return std::chrono::nanoseconds(0);
  if (!(percentile < 100.0)) return max();  // also catches NaN: the safe answer is the worst one
  const double exact = std::max(percentile, 0.0) / 100.0 * static_cast<double>(count_);
  // The rank is the smallest r with r >= exact; the small slack keeps 99.9% of 1000 at rank 999
  // when floating point makes it 999.0000000000001.
  auto rank = static_cast<std::uint64_t>(std::ceil(exact - exact * 1e-12));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const auto upper = static_cast<std::int64_t>(detail::highest_equivalent(i));
      return std::chrono::nanoseconds(std::min(upper, max_));
    }
  }
  return max();
}

}  // namespace pix::sim
