#pragma once
/// @file The gateway server's metrics (Redpanda's `*_probe`): every series the request path
/// touches is resolved here once, so a request never builds label strings or walks the registry.

#include <boost/beast/http/verb.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "pix/broker/publisher.hpp"
#include "pix/domain/topics.hpp"
#include "pix/gateway/config.hpp"
#include "pix/gateway/idempotency.hpp"
#include "pix/gateway/tls_context.hpp"
#include "pix/service/lifecycle.hpp"
#include "pix/telemetry/metrics.hpp"

namespace pix::gateway {

/// @brief What a request was for, as the `route` label says it.
enum class Route : std::uint8_t { kPublish, kHealthz, kReadyz, kMetrics, kOther, kUnparsed };

/// @brief Series of one counter family whose label values are open-ended (status codes, refusal
/// reasons): each label set is resolved on its first occurrence and kept, so a series appears
/// when it first happens (as dashboards expect) and later events only find it in a small map.
template <typename Key>
class CounterCache {
 public:
  CounterCache(telemetry::Registry& registry, std::string name, std::string help)
      : registry_(registry), name_(std::move(name)), help_(std::move(help)) {}

  /// The counter for `key`; `labels()` makes its labels the first time only.
  template <typename MakeLabels>
  telemetry::Counter& get(const Key& key, MakeLabels&& labels) {
    std::lock_guard lock(mutex_);
    auto [it, fresh] = counters_.try_emplace(key, nullptr);
    if (fresh) it->second = &registry_.counter(name_, help_, labels());
    return *it->second;
  }

 private:
  telemetry::Registry& registry_;
  std::string name_;
  std::string help_;
  std::mutex mutex_;
  std::unordered_map<Key, telemetry::Counter*> counters_;
};

/// @brief Owns the Server's metrics and registers its gauges; the server calls one small method
/// per event. Every family is exported from construction on (docs/metrics.txt lists them).
///
/// The gauges read `publisher`, `requests`, `idempotency` and `tls` (null without TLS) when
/// scraped: they must outlive the registry's last render, as the Server's members do.
class ServerProbe {
 public:
  ServerProbe(telemetry::Registry& metrics, const GatewayConfig& config, const broker::Publisher& publisher,
              const service::WorkGate& requests, const IdempotencyCache& idempotency, const TlsContextSource* tls);
  ServerProbe(const ServerProbe&) = delete;
  ServerProbe& operator=(const ServerProbe&) = delete;

  /// One request answered: `pix_http_requests_total` and `pix_http_request_duration_seconds`.
  void request(Route route, boost::beast::http::verb method, unsigned code, double seconds);
  /// One broker verdict, `ack_seconds` after the event was handed over.
  void publish_verdict(domain::Topic topic, broker::PublishStatus status, double ack_seconds) {
    ack_latency_->observe(ack_seconds);
    publishes_[static_cast<std::size_t>(topic)][static_cast<std::size_t>(status)]->inc();
  }
  /// A publish answered from the Idempotency-Key window.
  void replayed() { replays_->inc(); }
  /// A publish refused 401 or 403, by reason (`missing`, `insufficient_scope`, ...).
  void auth_rejected(const std::string& reason);
  void rate_limited() { rate_limited_->inc(); }
  /// A connection accepted beyond --max-connections.
  void connection_refused() { connections_refused_->inc(); }
  void tls_handshake_failed() { tls_handshake_failures_->inc(); }
  /// A certificate reload that changed the certificate (`ok`) or failed.
  void tls_reloaded(bool ok);

  void connection_opened() { open_connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_closed() { open_connections_.fetch_sub(1, std::memory_order_relaxed); }
  std::int64_t open_connections() const { return open_connections_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::size_t kRoutes = 6;
  static constexpr std::size_t kStatuses = 7;  // broker::PublishStatus values
  std::string route_label(Route route) const;

  std::string publish_route_;
  telemetry::Histogram* ack_latency_;
  telemetry::Counter* replays_;
  std::array<telemetry::Histogram*, kRoutes> request_duration_{};
  std::array<std::array<telemetry::Counter*, kStatuses>, domain::kTopicNames.size()> publishes_{};
  CounterCache<std::uint64_t> requests_;  // by route, method and code
  CounterCache<std::string> auth_rejections_;
  CounterCache<bool> tls_reloads_;  // by result: a series only once a reload happened
  telemetry::Counter* rate_limited_;
  telemetry::Counter* connections_refused_;
  telemetry::Counter* tls_handshake_failures_;
  std::atomic<std::int64_t> open_connections_{0};
};

}  // namespace pix::gateway
