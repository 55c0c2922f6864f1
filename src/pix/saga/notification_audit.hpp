#pragma once
/// @file The auditor's second input: the notifications on RabbitMQ, each appended to the audit
/// store and announced on pix.audit.log before it is acknowledged.

#include <chrono>
#include <string>

#include "pix/broker/publisher.hpp"
#include "pix/saga/handlers.hpp"
#include "pix/telemetry/metrics.hpp"
#include "pix/telemetry/tracer.hpp"

namespace pix::amqp {
struct AmqpUrl;  // amqp/url.hpp
}  // namespace pix::amqp

namespace pix::service {
class StopSource;  // service/lifecycle.hpp
}  // namespace pix::service

namespace pix::saga {

struct NotificationAuditOptions {
  std::string stage = "auditor";  ///< metrics label, log prefix, connection name
  std::string queue = "pix.notification.sent";
  std::string topic_prefix;  ///< prepended to pix.audit.log
  /// At the stop, how long the audit events in flight may take to be acknowledged (their
  /// notifications are acked then); what is left is redelivered by RabbitMQ.
  std::chrono::milliseconds drain_timeout{10000};
};

/// @brief Consumes `options.queue` until `stop` is asked (noticed within 100 ms, the consumer's
/// wait), then waits (bounded) for the audit events in flight.
///
/// Each delivery is appended, its audit event published, and only then acked. A publish that
/// fails (Kafka down) is retried with backoff while the delivery stays unacked: never rejected and
/// requeued, which would loop hot and, on quorum queues, count towards their delivery limit until
/// the notification is dead-lettered. The prefetch window bounds how many are held; on shutdown
/// the held ones are left unacked and RabbitMQ redelivers them (the store de-duplicates).
/// Throws what the audit store throws (a SQLite failure).
void audit_notifications(const NotificationAuditOptions& options, const amqp::AmqpUrl& url, Auditor& auditor,
                         broker::Publisher& out, telemetry::Registry& metrics, telemetry::Tracer& tracer,
                         const service::StopSource& stop);

}  // namespace pix::saga
