#pragma once
/// @file The small HTTP endpoint every worker process has: /healthz, /readyz, /metrics.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "pix/telemetry/metrics.hpp"

namespace pix::service {

/// @brief Serves GET /healthz (alive), /readyz (the `ready` check) and /metrics on its own thread.
class AdminServer {
 public:
  /// Returns {ready, detail}; called per /readyz request on the server's thread, so it should
  /// answer quickly (it may do a bounded broker round trip).
  using ReadyCheck = std::function<std::pair<bool, std::string>()>;

  AdminServer(const std::string& address, std::uint16_t port, telemetry::Registry& metrics, ReadyCheck ready);
  /// Stops the thread (joins it).
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  /// The bound port (useful with port 0).
  std::uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pix::service
