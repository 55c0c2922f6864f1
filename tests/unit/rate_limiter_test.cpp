#include "pix/gateway/rate_limiter.hpp"

#include <gtest/gtest.h>

namespace pix::gateway {
namespace {

using namespace std::chrono_literals;

TEST(RateLimiter, ABurstThenTheSteadyRate) {
  RateLimiter limiter(10, 5);
  const auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.acquire("alice", t0).allowed) << i;
  const auto refused = limiter.acquire("alice", t0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_s, 1);
  // 10/s: one more request fits after 100 ms, not before.
  EXPECT_FALSE(limiter.acquire("alice", t0 + 50ms).allowed);
  EXPECT_TRUE(limiter.acquire("alice", t0 + 160ms).allowed);
}

TEST(RateLimiter, EachPrincipalHasItsOwnBucket) {
  RateLimiter limiter(1, 1);
  const auto t0 = RateLimiter::Clock::now();
  EXPECT_TRUE(limiter.acquire("alice", t0).allowed);
  EXPECT_FALSE(limiter.acquire("alice", t0).allowed);
  EXPECT_TRUE(limiter.acquire("bob", t0).allowed);
}

TEST(RateLimiter, RetryAfterCoversTheWaitAtSlowRates) {
  RateLimiter limiter(0.25, 1);  // one request every 4 s
  const auto t0 = RateLimiter::Clock::now();
  EXPECT_TRUE(limiter.acquire("slow", t0).allowed);
  EXPECT_EQ(limiter.acquire("slow", t0).retry_after_s, 4);
}

TEST(RateLimiter, BoundedNumberOfBucketsForgetsTheOldest) {
  RateLimiter limiter(1, 1, 3);
  const auto t0 = RateLimiter::Clock::now();
  for (const char* k : {"a", "b", "c", "d"}) EXPECT_TRUE(limiter.acquire(k, t0).allowed);
  EXPECT_EQ(limiter.keys(), 3u);
  EXPECT_TRUE(limiter.acquire("a", t0).allowed);  // "a" was evicted: a fresh, full bucket
  EXPECT_FALSE(limiter.acquire("d", t0).allowed);
}

TEST(RateLimiter, OffWhenTheRateIsZero) {
  RateLimiter limiter(0, 0);
  EXPECT_FALSE(limiter.enabled());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.acquire("x").allowed);
}

}  // namespace
}  // namespace pix::gateway
