#pragma once
/// @file The Idempotency-Key window: a retry with the same key answers as the first request did.

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pix::gateway {

/// The scope of Idempotency-Keys sent without authentication (`--auth none`): one for everyone.
inline constexpr std::string_view kUnauthenticatedScope = "pix-pubsub:unauthenticated";

/// The event id of a request sent with an Idempotency-Key: a UUID (RFC 9562 version 8) made from
/// SHA-256 of the caller's scope (its principal) and the key. Every gateway replica, before and
/// after a restart, gives the same caller's key the same event id, and two callers' keys never
/// share one; downstream stages de-duplicate by it (docs/guarantees.md).
std::string idempotent_event_id(std::string_view scope, std::string_view key);

/// @brief A response kept so that a retry can be answered without publishing again.
struct StoredResponse {
  int status = 0;
  std::string body;
};

/// @brief Remembers, per Idempotency-Key, the request fingerprint and its successful answer.
///
/// Only successes are kept: a key whose first attempt failed (503/504) is forgotten, so the retry
/// publishes again under the same event id and consumers de-duplicate. Entries live for `window`,
/// and at most `max_keys` are kept (oldest evicted first). The expiry index holds one row per
/// live key plus the stale rows of abandoned or re-claimed keys; it is compacted whenever the
/// stale rows outnumber the live ones, so memory stays proportional to the keys held
/// (rows() shows it). Thread-safe.
class IdempotencyCache {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::chrono::seconds window{3600};
    std::size_t max_keys = 200'000;
  };

  enum class Outcome {
    kFirst,       ///< never seen (or expired): go ahead and publish, then complete() or abandon()
    kInProgress,  ///< the same key is being published right now: answer 409
    kReplay,      ///< answered before: send `response` again
    kMismatch,    ///< same key, different request: answer 422
  };

  struct Lookup {
    Outcome outcome = Outcome::kFirst;
    StoredResponse response;
  };

  explicit IdempotencyCache(Options options) : options_(options) {}

  /// Claim `key` for a request with this fingerprint (a hash of route and body).
  Lookup begin(std::string_view key, std::uint64_t fingerprint, Clock::time_point now = Clock::now());
  /// The claimed request succeeded: keep its answer for the window.
  void complete(std::string_view key, StoredResponse response);
  /// The claimed request failed: forget the key so that a retry publishes again.
  void abandon(std::string_view key);

  std::size_t size() const;
  /// Rows of the expiry index, stale ones included: at most 2 x size() + 1024.
  std::size_t rows() const;

 private:
  struct Entry {
    std::uint64_t fingerprint = 0;
    Clock::time_point expires;
    bool done = false;
    StoredResponse response;
  };

  void evict(Clock::time_point now);
  void compact_if_stale();

  Options options_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::pair<Clock::time_point, std::string>> order_;  // insertion order, for expiry
};

}  // namespace pix::gateway
