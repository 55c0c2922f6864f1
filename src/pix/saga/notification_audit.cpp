#include "pix/saga/notification_audit.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <memory>

#include "pix/amqp/consumer.hpp"
#include "pix/saga/verdict_queue.hpp"
#include "pix/service/lifecycle.hpp"
#include "pix/util/hash.hpp"

namespace pix::saga {

namespace {

using Clock = std::chrono::steady_clock;

std::string fnv_hex(std::string_view s) {
  const std::uint64_t h = util::fnv1a64(s);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

/// One notification between its delivery and its ack.
struct Held {
  amqp::Delivery delivery;
  broker::OutboundEvent event;
  int attempt = 0;
  Clock::time_point due{};
  // CONSUMER (delivery to ack) and PRODUCER (the audit event); shared: callbacks are copyable.
  std::shared_ptr<telemetry::Span> span;
  std::shared_ptr<telemetry::Span> send;
};

struct Verdict {
  Held held;
  broker::PublishResult result;
};

class NotificationAudit {
 public:
  NotificationAudit(const NotificationAuditOptions& options, const amqp::AmqpUrl& url, Auditor& auditor,
                    broker::Publisher& out, telemetry::Registry& metrics, telemetry::Tracer& tracer)
      : options_(options),
        consumer_(consumer_options(options, url)),
        auditor_(auditor),
        out_(out),
        tracer_(tracer),
        consumed_(metrics.counter("pix_stage_consumed_total", "",
                                  {{"stage", options.stage}, {"topic", "amqp:" + options.queue}})),
        retried_(metrics.counter("pix_stage_retries_total", "", {{"stage", options.stage}})) {}

  void run(const service::StopSource& stop) {
    while (!stop.stop_requested()) {
      settle(verdicts_->take_now());
      resend_due();
      if (auto d = consumer_.next(std::chrono::milliseconds(100))) audit(std::move(*d));
    }
    // Stopping: the audit events in flight get their verdicts (bounded), so that what Kafka holds
    // is acked; nothing is re-sent any more.
    const auto deadline = Clock::now() + options_.drain_timeout;
    settle(verdicts_->take_now());
    while (publishing_ > 0 && Clock::now() < deadline) settle(verdicts_->take(deadline));
    if (const std::size_t left = waiting_.size() + publishing_; left > 0) {
      spdlog::warn("{}: stopping with {} notification(s) not yet audited on Kafka; RabbitMQ redelivers them",
                   options_.stage, left);
    }
  }

 private:
  static amqp::ConsumerOptions consumer_options(const NotificationAuditOptions& options, const amqp::AmqpUrl& url) {
    amqp::ConsumerOptions o;
    o.url = url;
    o.queue = options.queue;
    o.connection_name = options.stage + " (notifications)";
    return o;
  }

  void publish(Held h) {
    ++publishing_;
    broker::OutboundEvent copy = h.event;  // kept for a retry
    // The callback holds the queue, not this object: a verdict after the loop gave up waiting
    // (drain deadline, or an exception) is dropped with the queue.
    out_.publish(std::move(copy), [queue = verdicts_, h = std::move(h)](broker::PublishResult r) mutable {
      queue->push({std::move(h), std::move(r)});
    });
  }

  /// Acknowledged audit events ack their notification; the others wait for a retry.
  void settle(std::vector<Verdict> ready) {
    const auto now = Clock::now();
    for (auto& v : ready) {
      --publishing_;
      if (v.result.status == broker::PublishStatus::kAcked) {
        v.held.send->set("messaging.destination.partition.id", std::to_string(v.result.partition))
            .set("messaging.kafka.offset", v.result.offset)
            .end();
        consumer_.ack(v.held.delivery);
        continue;
      }
      const auto backoff =
          std::min(std::chrono::milliseconds(200L << std::min(v.held.attempt, 5)), std::chrono::milliseconds(5000));
      if (v.held.attempt == 0 || v.held.attempt % 10 == 0) {
        spdlog::warn("{}: audit event {} not acknowledged ({}); holding the notification and retrying", options_.stage,
                     v.held.event.id, v.result.detail);
      }
      ++v.held.attempt;
      v.held.due = now + backoff;
      waiting_.push_back(std::move(v.held));
    }
  }

  void resend_due() {
    const auto now = Clock::now();
    while (!waiting_.empty() && waiting_.front().due <= now) {
      retried_.inc();
      publish(std::move(waiting_.front()));
      waiting_.pop_front();
    }
  }

  /// Appends the notification (durable before this returns) and publishes its audit event.
  void audit(amqp::Delivery d) {
    consumed_.inc();
    // A message without an id gets one from its content, so a redelivery maps to the same entry.
    const std::string id = d.message_id.empty() ? "amqp:" + d.routing_key + ":" + fnv_hex(d.body) : d.message_id;
    auto span =
        std::make_shared<telemetry::Span>(tracer_.start("process " + options_.queue, telemetry::SpanKind::kConsumer,
                                                        telemetry::parse_traceparent(d.header("traceparent"))));
    span->set("messaging.system", "rabbitmq")
        .set("messaging.operation.type", "process")
        .set("messaging.operation.name", "process")
        .set("messaging.destination.name", options_.queue)
        .set("messaging.rabbitmq.destination.routing_key", d.routing_key)
        .set("messaging.message.id", id)
        .set("pix.stage", options_.stage);
    broker::OutboundEvent ev;
    {
      const telemetry::ActiveSpan active(*span);
      ev = auditor_.audit(id, "amqp:" + d.routing_key, d.body, d.header("traceparent"), d.header("cloudEvents_source"));
    }
    ev.topic = options_.topic_prefix + ev.topic;
    auto send = std::make_shared<telemetry::Span>(span->child("send " + ev.topic, telemetry::SpanKind::kProducer));
    send->set("messaging.system", "kafka")
        .set("messaging.operation.type", "send")
        .set("messaging.operation.name", "send")
        .set("messaging.destination.name", ev.topic)
        .set("messaging.message.id", ev.id)
        .set("messaging.kafka.message.key", ev.key);
    if (send->valid()) ev.set_header("traceparent", send->context().to_traceparent());
    publish(Held{std::move(d), std::move(ev), 0, {}, std::move(span), std::move(send)});
  }

  const NotificationAuditOptions& options_;
  amqp::AmqpConsumer consumer_;
  Auditor& auditor_;
  broker::Publisher& out_;
  telemetry::Tracer& tracer_;
  telemetry::Counter& consumed_;
  telemetry::Counter& retried_;
  std::shared_ptr<VerdictQueue<Verdict>> verdicts_ = VerdictQueue<Verdict>::make();
  std::deque<Held> waiting_;  // failed publishes, oldest first, each due after its backoff
  std::size_t publishing_ = 0;
};

}  // namespace

void audit_notifications(const NotificationAuditOptions& options, const amqp::AmqpUrl& url, Auditor& auditor,
                         broker::Publisher& out, telemetry::Registry& metrics, telemetry::Tracer& tracer,
                         const service::StopSource& stop) {
  NotificationAudit(options, url, auditor, out, metrics, tracer).run(stop);
}

}  // namespace pix::saga
