#include "pix/gateway/idempotency.hpp"

#include <fmt/format.h>

#include "pix/util/sha256.hpp"

namespace pix::gateway {

std::string idempotent_event_id(std::string_view scope, std::string_view key) {
  // Length-prefixed, so that no scope and key pair reads as another.
  std::string input = "pix-pubsub/idempotency-key/v1\n" + std::to_string(scope.size()) + ":";
  input += scope;
  input += key;
  std::string h = util::sha256_hex(input).substr(0, 32);
  h[12] = '8';  // version 8: custom
  const int nibble = h[16] <= '9' ? h[16] - '0' : h[16] - 'a' + 10;
  h[16] = "89ab"[nibble & 3];  // variant 10
  return fmt::format("{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4), h.substr(16, 4),
                     h.substr(20, 12));
}

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
  compact_if_stale();
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
  compact_if_stale();
}

std::size_t IdempotencyCache::rows() const {
  std::lock_guard lock(mutex_);
  return order_.size();
}

void IdempotencyCache::compact_if_stale() {
  // Each live key has exactly one row whose expiry matches; the rest are stale. Rebuilding is
  // O(rows) and happens only after as many abandons as there are live keys: amortized O(1).
  if (order_.size() <= 2 * entries_.size() + 1024) return;
  std::deque<std::pair<Clock::time_point, std::string>> live;
  for (auto& row : order_) {
    if (auto it = entries_.find(row.second); it != entries_.end() && it->second.expires == row.first) {
      live.push_back(std::move(row));
    }
  }
  order_.swap(live);
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
