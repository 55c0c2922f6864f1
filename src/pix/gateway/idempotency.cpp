#include "pix/gateway/idempotency.hpp"

namespace pix::gateway {

IdempotencyCache::Lookup IdempotencyCache::begin(std::string_view key, std::uint64_t fingerprint,
                                                 Clock::time_point now) {
  std::lock_guard lock(mutex_);
  evict(now);
  auto [it, inserted] = entries_.try_emplace(std::string(key));
  Entry& e = it->second;
  if (!inserted && e.expires > now) {
    if (e.fingerprint != fingerprint) return {Outcome::kMismatch, {}};
    if (!e.done) return {Outcome::kInProgress, {}};
    return {Outcome::kReplay, e.response};
  }
  e = Entry{fingerprint, now + options_.window, false, {}};
  order_.emplace_back(e.expires, it->first);
  return {Outcome::kFirst, {}};
}

void IdempotencyCache::complete(std::string_view key, StoredResponse response) {
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(std::string(key)); it != entries_.end()) {
    it->second.done = true;
    it->second.response = std::move(response);
  }
}

void IdempotencyCache::abandon(std::string_view key) {
  std::lock_guard lock(mutex_);
  entries_.erase(std::string(key));
}

std::size_t IdempotencyCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void IdempotencyCache::evict(Clock::time_point now) {
  // order_ may hold stale rows for keys that were abandoned or re-begun; an entry is only
  // erased when its current expiry is the one the row recorded.
  while (!order_.empty() && (order_.front().first <= now || entries_.size() > options_.max_keys)) {
    auto& [expires, key] = order_.front();
    if (auto it = entries_.find(key); it != entries_.end() && it->second.expires == expires) entries_.erase(it);
    order_.pop_front();
  }
}

}  // namespace pix::gateway
