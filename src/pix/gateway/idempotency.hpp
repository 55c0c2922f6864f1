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

/// @brief A response kept so that a retry can be answered without publishing again.
struct StoredResponse {
  int status = 0;
  std::string body;
};

/// @brief Remembers, per Idempotency-Key, the request fingerprint and its successful answer.
///
/// Only successes are kept: a key whose first attempt failed (503/504) is forgotten, so the retry
/// publishes again under the same event id and consumers de-duplicate. Entries live for `window`,
/// and at most `max_keys` are kept (oldest evicted first). Thread-safe.
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

 private:
  struct Entry {
    std::uint64_t fingerprint = 0;
    Clock::time_point expires;
    bool done = false;
    StoredResponse response;
  };

  void evict(Clock::time_point now);

  Options options_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::pair<Clock::time_point, std::string>> order_;  // insertion order, for expiry
};

}  // namespace pix::gateway
