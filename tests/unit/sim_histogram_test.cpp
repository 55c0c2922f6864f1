#include "pix/sim/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace {

using pix::sim::LatencyHistogram;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

// The value at `p` percent of a sorted sample, by the same rank rule (the smallest value with at
// least p% of the sample at or below it).
std::int64_t exact_percentile(const std::vector<std::int64_t>& sorted, double p) {
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size()) - 1e-9));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void expect_within_one_percent(const LatencyHistogram& h, const std::vector<std::int64_t>& sorted, double p) {
  const auto exact = static_cast<double>(exact_percentile(sorted, p));
  const auto got = static_cast<double>(h.value_at_percentile(p).count());
  EXPECT_GE(got, exact) << "p" << p << " must not be below the true value";
  EXPECT_LE(got, exact * 1.01) << "p" << p << " more than 1% above the true value " << exact;
}

TEST(LatencyHistogram, EmptyAnswersZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), nanoseconds(0));
  EXPECT_EQ(h.max(), nanoseconds(0));
  EXPECT_EQ(h.mean(), nanoseconds(0));
  EXPECT_EQ(h.value_at_percentile(99), nanoseconds(0));
}

TEST(LatencyHistogram, UniformOneToTenThousandMicrosecondsWithinOnePercent) {
  LatencyHistogram h;
  std::vector<std::int64_t> values;
  for (std::int64_t us = 1; us <= 10000; ++us) {
    h.record(microseconds(us));
    values.push_back(us * 1000);
  }
  EXPECT_EQ(h.count(), 10000u);
  EXPECT_EQ(h.min(), microseconds(1));
  EXPECT_EQ(h.max(), microseconds(10000));
  EXPECT_EQ(h.mean(), nanoseconds(5'000'500));  // (1 + 10000) / 2 µs, exactly
  for (double p : {1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99}) expect_within_one_percent(h, values, p);
  // The exact values: rank 5000 is 5000 µs.
  EXPECT_GE(h.value_at_percentile(50), microseconds(5000));
  EXPECT_LE(h.value_at_percentile(50), microseconds(5050));
}

TEST(LatencyHistogram, BimodalKeepsBothModesApart) {
  // 90% fast around 1 ms, 10% slow around 200 ms: p50 is in the fast mode, p95 and up in the slow.
  LatencyHistogram h;
  std::vector<std::int64_t> values;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> fast(1e6, 1e5);
  std::normal_distribution<double> slow(200e6, 20e6);
  for (int i = 0; i < 100000; ++i) {
    const double v = (i % 10 == 9) ? slow(rng) : fast(rng);
    const auto ns = std::max<std::int64_t>(1000, std::llround(v));
    h.record(nanoseconds(ns));
    values.push_back(ns);
  }
  std::sort(values.begin(), values.end());
  for (double p : {10.0, 50.0, 89.0, 91.0, 95.0, 99.0, 99.9}) expect_within_one_percent(h, values, p);
  EXPECT_LT(h.value_at_percentile(89), milliseconds(2));
  EXPECT_GT(h.value_at_percentile(91), milliseconds(100));
  EXPECT_EQ(h.min(), nanoseconds(values.front()));
  EXPECT_EQ(h.max(), nanoseconds(values.back()));
}

TEST(LatencyHistogram, MinMaxAreExactAndP100IsMax) {
  LatencyHistogram h;
  h.record(nanoseconds(1'234'567));
  h.record(nanoseconds(987'654'321));
  h.record(nanoseconds(55'555));
  EXPECT_EQ(h.min(), nanoseconds(55'555));
  EXPECT_EQ(h.max(), nanoseconds(987'654'321));
  EXPECT_EQ(h.value_at_percentile(100), nanoseconds(987'654'321));
  // The bucket of the largest value reaches above it; the answer is clamped to it.
  EXPECT_EQ(h.value_at_percentile(99.99), nanoseconds(987'654'321));
  EXPECT_EQ(h.value_at_percentile(0), h.value_at_percentile(1));
  EXPECT_GE(h.value_at_percentile(0), nanoseconds(55'555));
  EXPECT_LE(h.value_at_percentile(0).count(), 55'555 * 101 / 100);
}

TEST(LatencyHistogram, OneValueIsEveryPercentile) {
  LatencyHistogram h;
  h.record(microseconds(3210));
  for (double p : {0.0, 50.0, 99.0, 100.0}) EXPECT_EQ(h.value_at_percentile(p), microseconds(3210)) << p;
}

TEST(LatencyHistogram, MergeEqualsRecordingEverything) {
  LatencyHistogram a, b, all;
  std::mt19937_64 rng(11);
  std::lognormal_distribution<double> d(std::log(2e6), 1.0);
  for (int i = 0; i < 20000; ++i) {
    const auto v = nanoseconds(std::llround(d(rng)));
    (i % 3 == 0 ? a : b).record(v);
    all.record(v);
  }
  LatencyHistogram merged;
  merged.merge(a);
  merged.merge(b);
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_EQ(merged.mean(), all.mean());
  for (double p : {0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
    EXPECT_EQ(merged.value_at_percentile(p), all.value_at_percentile(p)) << p;
  }
  LatencyHistogram empty;
  merged.merge(empty);
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
}

TEST(LatencyHistogram, MergeIntoEmptyTakesMinAndMax) {
  LatencyHistogram a, target;
  a.record(milliseconds(5));
  a.record(milliseconds(7));
  target.merge(a);
  EXPECT_EQ(target.min(), milliseconds(5));
  EXPECT_EQ(target.max(), milliseconds(7));
}

TEST(LatencyHistogram, ExtremeValuesClampSensibly) {
  LatencyHistogram h;
  h.record(nanoseconds(-5));  // a clock that stepped back: counted as 0, not lost
  h.record(nanoseconds(0));
  h.record(seconds(60));
  h.record(seconds(3600));  // beyond the range: top bucket, exact max
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.saturated(), 1u);
  EXPECT_EQ(h.min(), nanoseconds(0));
  EXPECT_EQ(h.max(), seconds(3600));
  EXPECT_EQ(h.value_at_percentile(100), seconds(3600));
  EXPECT_EQ(h.value_at_percentile(25), nanoseconds(0));
  // 60 s is still told apart within 1%.
  EXPECT_GE(h.value_at_percentile(75), seconds(60));
  EXPECT_LE(h.value_at_percentile(75), milliseconds(60600));
  // Above the range, percentiles report the top of the range, never more than max.
  EXPECT_EQ(h.value_at_percentile(99), nanoseconds(LatencyHistogram::kHighestTrackableNs));
}

TEST(LatencyHistogram, WithinOnePercentAcrossTheWholeRange) {
  // Every value from 1 µs to 60 s, one at a time: p100 of a single value is the value, and any
  // percentile below is at most 1% above it.
  for (std::int64_t ns = 1000; ns <= 60'000'000'000; ns = ns * 13 / 10 + 7) {
    LatencyHistogram h;
    h.record(nanoseconds(ns));
    h.record(nanoseconds(ns));
    EXPECT_GE(h.value_at_percentile(50).count(), ns);
    EXPECT_LE(static_cast<double>(h.value_at_percentile(50).count()), static_cast<double>(ns) * 1.01);
  }
}

TEST(LatencyHistogram, ResetForgetsEverything) {
  LatencyHistogram h;
  h.record(milliseconds(3));
  h.record(seconds(100));
  h.reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.saturated(), 0u);
  EXPECT_EQ(h.max(), nanoseconds(0));
  h.record(microseconds(10));
  EXPECT_EQ(h.min(), microseconds(10));
  EXPECT_EQ(h.value_at_percentile(100), microseconds(10));
}

}  // namespace
