#pragma once
/// @file Per-principal request rate limits: one token bucket per principal, bounded in number.

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pix::gateway {

/// @brief Token buckets keyed by principal (or client address when nobody is authenticated).
///
/// Each key may send `burst` requests at once and `rate` per second after that. At most
/// `max_keys` buckets are kept; the one used longest ago goes first, which only ever forgives a
/// caller (a fresh bucket is full). Thread-safe.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  RateLimiter(double rate_per_s, double burst, std::size_t max_keys = 100000);

  /// @brief The verdict for one request.
  struct Decision {
    bool allowed = true;
    int retry_after_s = 0;  ///< when refused: whole seconds until one request fits again (>= 1)
  };

  /// Takes one token from `key`'s bucket if it has one.
  Decision acquire(std::string_view key, Clock::time_point now = Clock::now());

  bool enabled() const noexcept { return rate_ > 0; }
  std::size_t keys() const;

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
    std::list<std::string>::iterator age;
  };

  const double rate_;
  const double burst_;
  const std::size_t max_keys_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::list<std::string> by_age_;  // most recently used first
};

}  // namespace pix::gateway
