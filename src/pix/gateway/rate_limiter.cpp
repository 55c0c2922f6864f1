#include "pix/gateway/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace pix::gateway {

RateLimiter::RateLimiter(double rate_per_s, double burst, std::size_t max_keys)
    : rate_(rate_per_s),
      burst_(burst > 0 ? burst : std::max(1.0, 2 * rate_per_s)),
      max_keys_(std::max<std::size_t>(1, max_keys)) {}

RateLimiter::Decision RateLimiter::acquire(std::string_view key, Clock::time_point now) {
  if (rate_ <= 0) return {};
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(std::string(key));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      buckets_.erase(by_age_.back());
      by_age_.pop_back();
    }
    by_age_.emplace_front(key);
    it = buckets_.emplace(std::string(key), Bucket{burst_, now, by_age_.begin()}).first;
  } else {
    by_age_.splice(by_age_.begin(), by_age_, it->second.age);
    const double elapsed = std::chrono::duration<double>(now - it->second.updated).count();
    if (elapsed > 0) it->second.tokens = std::min(burst_, it->second.tokens + elapsed * rate_);
    it->second.updated = std::max(it->second.updated, now);
  }
  Bucket& b = it->second;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return {};
  }
  const double wait_s = (1.0 - b.tokens) / rate_;
  return {false, std::max(1, static_cast<int>(std::ceil(wait_s)))};
}

std::size_t RateLimiter::keys() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

}  // namespace pix::gateway
