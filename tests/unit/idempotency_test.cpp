#include "pix/gateway/idempotency.hpp"

#include <gtest/gtest.h>

namespace pix::gateway {
namespace {

using Outcome = IdempotencyCache::Outcome;
using namespace std::chrono_literals;

TEST(Idempotency, FirstRequestProceedsAndItsSuccessIsReplayed) {
  IdempotencyCache cache({60s, 100});
  const auto t0 = IdempotencyCache::Clock::now();
  EXPECT_EQ(cache.begin("k1", 7, t0).outcome, Outcome::kFirst);
  cache.complete("k1", {200, "body-1"});
  const auto again = cache.begin("k1", 7, t0 + 1s);
  EXPECT_EQ(again.outcome, Outcome::kReplay);
  EXPECT_EQ(again.response.status, 200);
  EXPECT_EQ(again.response.body, "body-1");
}

TEST(Idempotency, ConcurrentDuplicateIsInProgress) {
  IdempotencyCache cache({60s, 100});
  const auto t0 = IdempotencyCache::Clock::now();
  ASSERT_EQ(cache.begin("k", 1, t0).outcome, Outcome::kFirst);
  EXPECT_EQ(cache.begin("k", 1, t0).outcome, Outcome::kInProgress);
}

TEST(Idempotency, SameKeyDifferentRequestIsMismatch) {
  IdempotencyCache cache({60s, 100});
  const auto t0 = IdempotencyCache::Clock::now();
  ASSERT_EQ(cache.begin("k", 1, t0).outcome, Outcome::kFirst);
  cache.complete("k", {200, "b"});
  EXPECT_EQ(cache.begin("k", 2, t0).outcome, Outcome::kMismatch);
}

TEST(Idempotency, FailureIsForgottenSoTheRetryPublishes) {
  IdempotencyCache cache({60s, 100});
  const auto t0 = IdempotencyCache::Clock::now();
  ASSERT_EQ(cache.begin("k", 1, t0).outcome, Outcome::kFirst);
  cache.abandon("k");
  EXPECT_EQ(cache.begin("k", 1, t0).outcome, Outcome::kFirst);
}

TEST(Idempotency, KeysExpireAfterTheWindow) {
  IdempotencyCache cache({10s, 100});
  const auto t0 = IdempotencyCache::Clock::now();
  ASSERT_EQ(cache.begin("k", 1, t0).outcome, Outcome::kFirst);
  cache.complete("k", {200, "b"});
  EXPECT_EQ(cache.begin("k", 1, t0 + 9s).outcome, Outcome::kReplay);
  EXPECT_EQ(cache.begin("k", 1, t0 + 11s).outcome, Outcome::kFirst);
}

TEST(Idempotency, OldestKeysAreDroppedBeyondTheLimit) {
  IdempotencyCache cache({3600s, 3});
  const auto t0 = IdempotencyCache::Clock::now();
  for (const char* k : {"a", "b", "c", "d", "e"}) {
    ASSERT_EQ(cache.begin(k, 1, t0).outcome, Outcome::kFirst);
    cache.complete(k, {200, k});
  }
  cache.begin("f", 1, t0);  // evicts down to the limit before inserting
  EXPECT_LE(cache.size(), 4u);
  EXPECT_EQ(cache.begin("e", 1, t0).outcome, Outcome::kReplay);
  EXPECT_EQ(cache.begin("a", 1, t0).outcome, Outcome::kFirst);
}

}  // namespace
}  // namespace pix::gateway
