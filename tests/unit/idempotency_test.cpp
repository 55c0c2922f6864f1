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

TEST(IdempotentEventId, TheSameCallersKeyGetsTheSameIdOnEveryReplicaAndOthersNever) {
  const auto id = idempotent_event_id("bank-app", "order-17");
  EXPECT_EQ(id, idempotent_event_id("bank-app", "order-17"));
  EXPECT_NE(id, idempotent_event_id("other-app", "order-17"));
  EXPECT_NE(id, idempotent_event_id("bank-app", "order-18"));
  // Scope and key are kept apart: ("a\nb", "c") is not ("a", "b\nc").
  EXPECT_NE(idempotent_event_id("a\nb", "c"), idempotent_event_id("a", "b\nc"));
  ASSERT_EQ(id.size(), 36u);
  EXPECT_EQ(id[8], '-');
  EXPECT_EQ(id[14], '8') << "RFC 9562 version 8";
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << "RFC 9562 variant";
}

TEST(Idempotency, AbandonedKeysDoNotGrowTheIndexWithoutBound) {
  IdempotencyCache cache({3600s, 100'000});
  const auto t0 = IdempotencyCache::Clock::now();
  cache.begin("kept", 1, t0);
  for (int i = 0; i < 50'000; ++i) {
    const std::string key = "failing-" + std::to_string(i % 10);
    ASSERT_EQ(cache.begin(key, 1, t0).outcome, Outcome::kFirst);
    cache.abandon(key);  // a 503: forgotten, so that the retry publishes
  }
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_LE(cache.rows(), 2 * cache.size() + 1024) << "stale rows of abandoned keys were never freed";
  EXPECT_EQ(cache.begin("kept", 1, t0).outcome, Outcome::kInProgress) << "compaction lost a live key";
}

}  // namespace
}  // namespace pix::gateway
