#include "pix/sim/rate.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "pix/sim/histogram.hpp"

namespace {

using pix::sim::LatencyHistogram;
using pix::sim::OpenLoopQueue;
using pix::sim::RateSchedule;
using pix::sim::Ticket;
using Clock = RateSchedule::Clock;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

const Clock::time_point kStart = Clock::time_point(seconds(1000));

TEST(RateSchedule, IntegerRateIsExact) {
  const RateSchedule s(1000, kStart);
  EXPECT_EQ(s.due(0), kStart);
  EXPECT_EQ(s.due(1), kStart + milliseconds(1));
  EXPECT_EQ(s.due(999), kStart + milliseconds(999));
  EXPECT_EQ(s.due(1000), kStart + seconds(1));
  const RateSchedule fast(10000, kStart);
  EXPECT_EQ(fast.due(12345), kStart + nanoseconds(1'234'500'000));
}

TEST(RateSchedule, FractionalRatesAreExact) {
  const RateSchedule three(3, kStart);
  EXPECT_EQ(three.due(1), kStart + nanoseconds(333'333'333));
  EXPECT_EQ(three.due(2), kStart + nanoseconds(666'666'666));
  EXPECT_EQ(three.due(3), kStart + seconds(1));
  const RateSchedule two_and_a_half(2.5, kStart);
  EXPECT_EQ(two_and_a_half.due(1), kStart + milliseconds(400));
  EXPECT_EQ(two_and_a_half.due(5), kStart + seconds(2));
  const RateSchedule every_five_seconds(0.2, kStart);  // the seed's interval
  EXPECT_EQ(every_five_seconds.due(1), kStart + seconds(5));
  EXPECT_EQ(every_five_seconds.due(12), kStart + seconds(60));
  EXPECT_DOUBLE_EQ(two_and_a_half.per_second(), 2.5);
}

TEST(RateSchedule, NoDriftAfterAMillionRequests) {
  // Adding a rounded period a million times would be off by up to a million ns; computing from n
  // keeps each due time within 1 ns of n / rate.
  const RateSchedule three(3, kStart);
  EXPECT_EQ(three.due(1'000'000), kStart + nanoseconds(333'333'333'333'333));
  EXPECT_EQ(three.due(3'000'000), kStart + seconds(1'000'000));
  const RateSchedule odd(7777.7, kStart);
  for (std::uint64_t n : {1ULL, 999'999ULL, 1'000'000ULL, 77'777ULL * 1000}) {
    const long double exact = static_cast<long double>(n) * 1e9L / 7777.7L;
    const auto got = static_cast<long double>((odd.due(n) - kStart).count());
    EXPECT_LE(exact - got, 1.0L) << n;
    EXPECT_GE(exact - got, -0.001L) << n;  // floor: never early
  }
  // 77,777 requests at 7777.7/s take exactly 10 s.
  EXPECT_EQ(odd.due(77'777), kStart + seconds(10));
  EXPECT_EQ(odd.due(77'777ULL * 100'000), kStart + seconds(1'000'000));
}

TEST(RateSchedule, DueCountAgreesWithDue) {
  std::mt19937_64 rng(3);
  for (double rate : {1.0, 3.0, 2.5, 1000.0, 7777.7, 100000.0}) {
    const RateSchedule s(rate, kStart);
    EXPECT_EQ(s.due_count(kStart - nanoseconds(1)), 0u);
    EXPECT_EQ(s.due_count(kStart), 1u);  // request 0 is due at the start
    std::uniform_int_distribution<std::int64_t> offset(0, 100'000'000'000);
    for (int i = 0; i < 2000; ++i) {
      const auto now = kStart + nanoseconds(offset(rng));
      const std::uint64_t c = s.due_count(now);
      ASSERT_GE(c, 1u);
      EXPECT_LE(s.due(c - 1), now) << rate;
      EXPECT_GT(s.due(c), now) << rate;
    }
  }
}

TEST(RateSchedule, RejectsRatesThatAreNotPositive) {
  EXPECT_THROW(RateSchedule(0, kStart), std::invalid_argument);
  EXPECT_THROW(RateSchedule(-5, kStart), std::invalid_argument);
  EXPECT_THROW(RateSchedule(std::numeric_limits<double>::infinity(), kStart), std::invalid_argument);
  EXPECT_THROW(RateSchedule(std::numeric_limits<double>::quiet_NaN(), kStart), std::invalid_argument);
}

TEST(OpenLoopQueue, HandsOutTicketsOnlyWhenDue) {
  OpenLoopQueue q(RateSchedule(10, kStart));
  EXPECT_FALSE(q.take(kStart - nanoseconds(1)));
  auto t0 = q.take(kStart);
  ASSERT_TRUE(t0);
  EXPECT_EQ(t0->seq, 0u);
  EXPECT_EQ(t0->intended, kStart);
  EXPECT_FALSE(q.take(kStart + milliseconds(99)));
  EXPECT_EQ(q.next_due(), kStart + milliseconds(100));
  // Late by 350 ms: three more are due, each with its own intended time, not the time taken.
  EXPECT_EQ(q.due_untaken(kStart + milliseconds(350)), 3u);
  for (std::uint64_t n = 1; n <= 3; ++n) {
    auto t = q.take(kStart + milliseconds(350));
    ASSERT_TRUE(t);
    EXPECT_EQ(t->seq, n);
    EXPECT_EQ(t->intended, kStart + milliseconds(100 * n));
  }
  EXPECT_FALSE(q.take(kStart + milliseconds(350)));
  EXPECT_EQ(q.due_untaken(kStart + milliseconds(350)), 0u);
  EXPECT_EQ(q.taken(), 4u);
}

TEST(OpenLoopQueue, LimitEndsTheStream) {
  OpenLoopQueue q(RateSchedule(1000, kStart), 5);
  int n = 0;
  while (q.take(kStart + seconds(10))) ++n;
  EXPECT_EQ(n, 5);
  EXPECT_TRUE(q.exhausted());
  EXPECT_EQ(q.next_due(), Clock::time_point::max());
  EXPECT_EQ(q.due_untaken(kStart + seconds(10)), 0u);
}

TEST(OpenLoopQueue, StridesSplitOneScheduleWithoutGapsOrOverlap) {
  const RateSchedule s(1000, kStart);
  OpenLoopQueue even(s, 101, 0, 2), odd(s, 101, 1, 2);
  const auto late = kStart + seconds(1);
  EXPECT_EQ(even.due_untaken(late) + odd.due_untaken(late), 101u);
  std::set<std::uint64_t> seen;
  for (auto* q : {&even, &odd}) {
    while (auto t = q->take(late)) {
      EXPECT_EQ(t->intended, s.due(t->seq));
      EXPECT_TRUE(seen.insert(t->seq).second);
    }
  }
  EXPECT_EQ(seen.size(), 101u);
  EXPECT_EQ(*seen.rbegin(), 100u);
}

// The point of measuring from the intended time. A fake clock drives the engine's queue against a
// simulated server: 10 keep-alive connections, 1 ms per request, and a stall from t = 1 s to
// t = 2 s during which nothing is answered. Requests wait, first-come first-served, for a free
// connection, as in the engine.
TEST(OpenLoopQueue, LatencyFromIntendedTimeIncludesTheQueueBehindAStall) {
  const auto service = milliseconds(1);
  const auto stall_begin = kStart + seconds(1);
  const auto stall_end = kStart + seconds(2);
  auto serve = [&](Clock::time_point sent) {
    const auto done = sent + service;
    return (done > stall_begin && sent < stall_end) ? stall_end + service : done;
  };

  OpenLoopQueue q(RateSchedule(1000, kStart), 3000);
  std::vector<Clock::time_point> free_at(10, kStart);
  LatencyHistogram from_intended, from_send;
  std::vector<std::pair<Clock::time_point, nanoseconds>> stalled;  // (intended, latency) during the stall
  while (!q.exhausted()) {
    const auto now = q.next_due();  // the fake clock jumps to the next due time
    while (auto t = q.take(now)) {
      auto conn = std::min_element(free_at.begin(), free_at.end());
      const auto sent = std::max(t->intended, *conn);
      const auto done = serve(sent);
      *conn = done;
      const auto latency = pix::sim::open_loop_latency(*t, done);
      from_intended.record(latency);
      from_send.record(done - sent);
      if (t->intended >= stall_begin && t->intended < stall_end) stalled.emplace_back(t->intended, latency);
    }
  }

  ASSERT_EQ(stalled.size(), 1000u);
  for (std::size_t i = 0; i < stalled.size(); ++i) {
    const auto& [intended, latency] = stalled[i];
    // Each waited at least until the stall ended, so the earlier in the stall, the longer.
    EXPECT_GE(latency, stall_end - intended) << i;
    if (i > 0) {
      EXPECT_LE(latency, stalled[i - 1].second) << i;
    }
  }
  EXPECT_GE(stalled.front().second, milliseconds(999));

  // A third of the requests were caught by the stall; p99 and p90 say so.
  EXPECT_GE(from_intended.value_at_percentile(99), milliseconds(950));
  EXPECT_GE(from_intended.value_at_percentile(90), milliseconds(600));
  // Timed from their actual send, only the 10 requests in flight at the stall look slow: the
  // coordinated omission a closed-loop tool would report.
  EXPECT_LE(from_send.value_at_percentile(99), milliseconds(2));
  EXPECT_GE(from_send.max(), milliseconds(999));
}

}  // namespace
