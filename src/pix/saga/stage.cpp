#include "pix/saga/stage.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>

#include "pix/saga/kafka_record_source.hpp"
#include "pix/saga/verdict_queue.hpp"
#include "pix/service/lifecycle.hpp"

namespace pix::saga {

using Clock = std::chrono::steady_clock;

std::string event_id_of(const kafka::ConsumedRecord& r) {
  const auto& id = r.header("ce_id");
  return id.empty() ? r.topic + "/" + std::to_string(r.partition) + "@" + std::to_string(r.offset) : id;
}

broker::OutboundEvent dead_letter_event(const kafka::ConsumedRecord& record, const std::string& stage,
                                        const std::string& reason, const std::string& topic) {
  broker::OutboundEvent ev;
  ev.topic = topic;
  ev.key = record.key;
  ev.payload = record.value;
  ev.id = event_id_of(record);
  ev.timestamp_ms = record.timestamp_ms;
  for (const auto& [k, v] : record.headers) ev.headers.push_back({k, v});
  ev.headers.push_back({"pix_dlq_reason", reason});
  ev.headers.push_back({"pix_dlq_stage", stage});
  ev.headers.push_back(
      {"pix_dlq_source", record.topic + "/" + std::to_string(record.partition) + "@" + std::to_string(record.offset)});
  return ev;
}

namespace {

/// An output that could not be written, as its dead-letter copy. A copy of a record the broker
/// found too large would be refused again: it keeps the headers and says what the value was.
broker::OutboundEvent refused_output_dead_letter(const broker::OutboundEvent& out, const std::string& source,
                                                 const std::string& stage, const std::string& reason,
                                                 const std::string& topic) {
  broker::OutboundEvent ev = out;
  ev.topic = topic;
  ev.partition = -1;
  if (reason.find("too large") != std::string::npos) {
    ev.payload = R"({"refused":"record too large","bytes":)" + std::to_string(out.payload.size()) + "}";
  }
  ev.headers.push_back({"pix_dlq_reason", reason});
  ev.headers.push_back({"pix_dlq_stage", stage});
  ev.headers.push_back({"pix_dlq_source", source});
  ev.headers.push_back({"pix_dlq_target", out.topic});
  return ev;
}

constexpr int kStuckAfterAttempts = 5;

/// The stage's name is its consumer's client id, and its group unless one is given.
void apply_consumer_defaults(StageOptions& options) {
  if (options.consumer.group_id.empty()) options.consumer.group_id = options.name;
  options.consumer.client_id = options.name;
}

}  // namespace

struct KafkaStage::Impl {
  struct PendingRecord {
    std::string topic;
    std::int32_t partition;
    std::int64_t offset;
    std::vector<Output> outputs;
    std::size_t outstanding;
    Clock::time_point started;
    telemetry::Span span;                ///< CONSUMER: from consumed to every output acknowledged
    std::vector<telemetry::Span> sends;  ///< PRODUCER, one per output
  };
  struct Completion {
    std::uint64_t record;
    std::size_t output;
    broker::PublishResult result;
  };
  struct Retry {
    Clock::time_point due;
    std::uint64_t record;
    std::size_t output;
    int attempt;
  };

  StageOptions options;
  Handler handler;
  broker::Publisher& kafka;
  broker::Publisher* rabbit;
  std::unique_ptr<RecordSource> records;

  std::uint64_t next_id = 1;
  std::map<std::uint64_t, PendingRecord> pending;
  std::map<std::pair<std::uint64_t, std::size_t>, int> attempts;
  std::deque<Retry> retries;

  // Verdicts of the outputs, pushed by the publishers' threads; the run thread sleeps on it when
  // it has nothing else to do. Shared with every callback given to a publisher, so a callback
  // that fires after the stage is gone (its publisher drained later) does not dangle.
  std::shared_ptr<VerdictQueue<Completion>> completions = VerdictQueue<Completion>::make();

  // Outputs retried kStuckAfterAttempts times or more, by destination: readiness names them.
  mutable std::mutex stuck_mutex;
  std::map<std::string, int> stuck_by_topic;
  std::atomic<std::size_t> stuck{0};
  std::atomic<std::size_t> in_flight{0};

  telemetry::Counter* dead_lettered;
  telemetry::Counter* retried;
  telemetry::Histogram* processing;
  telemetry::Registry& metrics;

  bool closing = false;  // the source is being destroyed: its revoke must not touch the stage
  telemetry::Tracer disabled_tracer;
  telemetry::Tracer* tracer = nullptr;

  ~Impl() {
    closing = true;
    records.reset();
  }

  /// Waits (bounded) until every record consumed has its outputs acknowledged: woken by each
  /// verdict, and by the earliest retry due.
  void finish_in_flight(std::chrono::milliseconds bound) {
    const auto deadline = Clock::now() + bound;
    handle_completions(completions->take_now());
    while (!pending.empty() && Clock::now() < deadline) {
      handle_completions(completions->take(std::min(deadline, next_retry_due())));
    }
  }

  /// When the earliest output waiting for its backoff is due to be sent again (far: none).
  Clock::time_point next_retry_due() const {
    auto due = Clock::time_point::max();
    for (const auto& r : retries) due = std::min(due, r.due);
    return due;
  }

  void before_revoke(const std::vector<std::pair<std::string, std::int32_t>>& partitions) {
    if (closing) return;
    // The next owner re-reads from the committed offset: finishing what is in flight first
    // keeps the records it redoes few, and lets it read back this member's decisions.
    finish_in_flight(options.drain_timeout);
    if (!pending.empty()) {
      spdlog::warn("{}: giving up {} partition(s) with {} record(s) unfinished; the next owner redoes them",
                   options.name, partitions.size(), pending.size());
    }
    if (options.on_revoked) {
      for (const auto& [topic, partition] : partitions) options.on_revoked(topic, partition);
    }
  }

  Impl(StageOptions o, Handler h, std::unique_ptr<RecordSource> source, broker::Publisher& k, broker::Publisher* r,
       telemetry::Registry& m)
      : options(std::move(o)), handler(std::move(h)), kafka(k), rabbit(r), records(std::move(source)), metrics(m) {
    if (!records) throw std::invalid_argument("stage " + options.name + ": no record source");
    apply_consumer_defaults(options);
    records->on_before_revoke([this](const RecordSource::Partitions& partitions) { before_revoke(partitions); });
    tracer = options.tracer ? options.tracer : &disabled_tracer;
    const telemetry::Labels stage{{"stage", options.name}};
    dead_lettered = &m.counter("pix_stage_dead_lettered_total", "Records sent to the dead-letter topic", stage);
    retried = &m.counter("pix_stage_retries_total", "Outputs re-sent after a retryable failure", stage);
    processing = &m.histogram("pix_stage_processing_seconds",
                              "Time from consuming a record to all its outputs acknowledged", stage);
    m.describe("pix_stage_consumed_total", "Records consumed, by stage and topic", "counter");
    m.describe("pix_stage_produced_total", "Outputs acknowledged by the broker, by stage and topic", "counter");
    telemetry::describe_tracing_metrics(m);  // exported with tracing off too: dashboards see zeros
    m.gauge("pix_stage_consumer_lag", "Messages behind the end of the assigned partitions (librdkafka statistics)",
            stage, [source = records.get()] { return static_cast<double>(source->lag()); });
    m.gauge("pix_stage_in_flight", "Records consumed whose outputs are not all acknowledged yet", stage,
            [this] { return static_cast<double>(in_flight.load()); });
    m.gauge("pix_stage_outputs_stuck", "Destinations with an output retried 5 times or more (not ready meanwhile)",
            stage, [this] { return static_cast<double>(stuck.load()); });
  }

  broker::Publisher& sink(Sink s) { return s == Sink::kRabbit && rabbit ? *rabbit : kafka; }

  void set_stuck(const std::string& topic, bool on) {
    std::lock_guard lock(stuck_mutex);
    int& n = stuck_by_topic[topic];
    n += on ? 1 : -1;
    if (n <= 0) stuck_by_topic.erase(topic);
    stuck = stuck_by_topic.size();
  }

  std::string stuck_detail() const {
    std::lock_guard lock(stuck_mutex);
    std::string topics;
    for (const auto& [topic, n] : stuck_by_topic) topics += (topics.empty() ? "" : ", ") + topic;
    return topics;
  }

  /// The output is done with (acknowledged or replaced): forget its attempts.
  void settle_attempts(std::uint64_t record, std::size_t output, const std::string& topic) {
    auto a = attempts.find({record, output});
    if (a == attempts.end()) return;
    if (a->second >= kStuckAfterAttempts) set_stuck(topic, false);
    attempts.erase(a);
  }

  void send(std::uint64_t id, std::size_t index) {
    auto& rec = pending.at(id);
    broker::OutboundEvent copy = rec.outputs[index].event;  // kept for a possible retry
    sink(rec.outputs[index].sink).publish(std::move(copy), [queue = completions, id, index](broker::PublishResult r) {
      queue->push({id, index, std::move(r)});
    });
  }

  telemetry::Span process_span(const kafka::ConsumedRecord& record) {
    telemetry::Span span = tracer->start("process " + record.topic, telemetry::SpanKind::kConsumer,
                                         telemetry::parse_traceparent(record.header("traceparent")));
    if (span.recording()) {
      span.set("messaging.system", "kafka")
          .set("messaging.operation.type", "process")
          .set("messaging.operation.name", "process")
          .set("messaging.destination.name", record.topic)
          .set("messaging.consumer.group.name", options.consumer.group_id)
          .set("messaging.destination.partition.id", std::to_string(record.partition))
          .set("messaging.kafka.offset", record.offset)
          .set("messaging.message.id", event_id_of(record))
          .set("messaging.kafka.message.key", record.key)
          .set("pix.stage", options.name);
    }
    return span;
  }

  /// The output's PRODUCER span under the record's, its context written into the output.
  telemetry::Span send_span(const telemetry::Span& parent, Output& out) {
    telemetry::Span span = parent.child("send " + out.event.topic, telemetry::SpanKind::kProducer);
    if (span.valid()) out.event.set_header("traceparent", span.context().to_traceparent());
    if (span.recording()) {
      const bool amqp = out.sink == Sink::kRabbit && rabbit;
      span.set("messaging.system", amqp ? "rabbitmq" : "kafka")
          .set("messaging.operation.type", "send")
          .set("messaging.operation.name", "send")
          .set("messaging.message.id", out.event.id)
          .set("messaging.destination.name", amqp ? options.rabbit_exchange : out.event.topic);
      if (amqp) {
        span.set("messaging.rabbitmq.destination.routing_key", out.event.topic);
      } else {
        span.set("messaging.kafka.message.key", out.event.key);
      }
    }
    return span;
  }

  void accept(kafka::ConsumedRecord&& record) {
    metrics.counter("pix_stage_consumed_total", "", {{"stage", options.name}, {"topic", record.topic}}).inc();
    telemetry::Span span = process_span(record);
    // Handlers report bad input as poison; an exception (storage failure) ends the stage, and
    // the record is consumed again after the restart.
    HandlerResult result;
    {
      const telemetry::ActiveSpan active(span);
      result = handler(record);
      if (!result.poison_reason.empty()) {
        spdlog::warn("{}: dead-lettering {}/{}@{}: {}", options.name, record.topic, record.partition, record.offset,
                     result.poison_reason);
        span.set_error("dead-lettered: " + result.poison_reason);
        dead_lettered->inc();
        result.outputs.clear();
        result.outputs.push_back(
            {Sink::kKafka, dead_letter_event(record, options.name, result.poison_reason, options.dead_letter_topic)});
      }
    }
    const std::uint64_t id = next_id++;
    const std::size_t n = result.outputs.size();
    PendingRecord rec{
        record.topic, record.partition, record.offset, std::move(result.outputs), n, Clock::now(), {}, {}};
    rec.sends.reserve(n);
    for (auto& out : rec.outputs) rec.sends.push_back(send_span(span, out));
    rec.span = std::move(span);
    pending.emplace(id, std::move(rec));
    if (n == 0) {
      finish(id);
      return;
    }
    for (std::size_t i = 0; i < n; ++i) send(id, i);
  }

  void finish(std::uint64_t id) {
    auto it = pending.find(id);
    processing->observe(std::chrono::duration<double>(Clock::now() - it->second.started).count());
    records->mark_done(it->second.topic, it->second.partition, it->second.offset);
    pending.erase(it);
  }

  void handle_completions(std::vector<Completion> batch) {
    for (auto& c : batch) {
      auto it = pending.find(c.record);
      if (it == pending.end()) continue;
      const auto& out = it->second.outputs[c.output];
      if (c.result.status == broker::PublishStatus::kAcked) {
        metrics.counter("pix_stage_produced_total", "", {{"stage", options.name}, {"topic", out.event.topic}}).inc();
        auto& send_span = it->second.sends[c.output];
        if (send_span.recording()) {
          if (c.result.partition >= 0) {
            send_span.set("messaging.destination.partition.id", std::to_string(c.result.partition))
                .set("messaging.kafka.offset", c.result.offset);
          }
          if (auto a = attempts.find({c.record, c.output}); a != attempts.end()) {
            send_span.set("pix.retries", std::int64_t{a->second});
          }
        }
        send_span.end();
        settle_attempts(c.record, c.output, out.event.topic);
        if (--it->second.outstanding == 0) finish(c.record);
        continue;
      }
      const telemetry::ActiveSpan active(it->second.span);  // its log lines carry the record's trace
      int& attempt = attempts[{c.record, c.output}];
      ++attempt;
      if (c.result.status == broker::PublishStatus::kRejected && attempt >= options.max_refusals &&
          out.event.topic != options.dead_letter_topic) {
        // Refused for good: the output goes to the dead-letter topic instead, and the partition
        // moves on. (A refused dead-letter copy has nowhere else to go: it is retried below.)
        const std::string reason = "output refused by the broker " + std::to_string(attempt) +
                                   " times: " + out.event.topic + ": " + c.result.detail;
        spdlog::error("{}: {} ({}); dead-lettering it", options.name, reason, out.event.id);
        dead_lettered->inc();
        const std::string target = out.event.topic;
        const auto& rec = it->second;
        auto dead = refused_output_dead_letter(
            out.event, rec.topic + "/" + std::to_string(rec.partition) + "@" + std::to_string(rec.offset), options.name,
            reason, options.dead_letter_topic);
        settle_attempts(c.record, c.output, target);
        it->second.sends[c.output].set_error(reason).end();
        it->second.span.set_error("an output was dead-lettered: " + reason);
        it->second.outputs[c.output] = Output{Sink::kKafka, std::move(dead)};
        it->second.sends[c.output] = send_span(it->second.span, it->second.outputs[c.output]);
        send(c.record, c.output);
        continue;
      }
      // Not acknowledged: send again (same event id, so consumers de-duplicate) after a backoff.
      const auto backoff = std::min(options.retry_backoff * (1 << std::min(attempt - 1, 8)), options.retry_backoff_max);
      if (attempt == 1 || attempt % 10 == 0) {
        spdlog::warn("{}: output {} to {} not acknowledged ({}: {}); retry {} in {} ms", options.name, out.event.id,
                     out.event.topic, broker::to_string(c.result.status), c.result.detail, attempt, backoff.count());
      }
      if (attempt == kStuckAfterAttempts) set_stuck(out.event.topic, true);
      retried->inc();
      retries.push_back({Clock::now() + backoff, c.record, c.output, attempt});
    }
    const auto now = Clock::now();
    for (std::size_t i = retries.size(); i > 0; --i) {
      Retry r = retries.front();
      retries.pop_front();
      if (r.due <= now) {
        send(r.record, r.output);
      } else {
        retries.push_back(r);
      }
    }
  }
};

KafkaStage::KafkaStage(StageOptions options, Handler handler, broker::Publisher& kafka, broker::Publisher* rabbit,
                       telemetry::Registry& metrics) {
  apply_consumer_defaults(options);
  auto records = std::make_unique<KafkaRecordSource>(options.consumer);
  impl_ = std::make_unique<Impl>(std::move(options), std::move(handler), std::move(records), kafka, rabbit, metrics);
}

KafkaStage::KafkaStage(StageOptions options, Handler handler, std::unique_ptr<RecordSource> records,
                       broker::Publisher& kafka, broker::Publisher* rabbit, telemetry::Registry& metrics)
    : impl_(
          std::make_unique<Impl>(std::move(options), std::move(handler), std::move(records), kafka, rabbit, metrics)) {}

KafkaStage::~KafkaStage() = default;

bool KafkaStage::healthy() const noexcept {
  return impl_->records->assigned() && impl_->stuck.load() == 0;
}

std::string KafkaStage::health_detail() const {
  if (!impl_->records->assigned()) return "no partitions assigned yet";
  if (impl_->stuck.load() > 0) return "outputs to " + impl_->stuck_detail() + " retrying";
  return {};
}

void KafkaStage::run(service::StopSource& stop) {
  auto& s = *impl_;
  // The stop wakes the loop where it waits for acknowledgements (with max_records_in_flight
  // reached); the callback holds the queue, not the stage, so it may outlive the stage.
  stop.on_stop([queue = s.completions] { queue->wake(); });
  auto last_commit = Clock::now();
  while (!stop.stop_requested()) {
    if (s.pending.size() < s.options.max_records_in_flight) {
      if (auto rec = s.records->poll(std::chrono::milliseconds(50))) s.accept(std::move(*rec));
      s.handle_completions(s.completions->take_now());
    } else {
      // Full: nothing to do until an output is acknowledged, a retry is due or it is time to
      // commit what is done.
      s.handle_completions(s.completions->take(std::min(last_commit + s.options.commit_interval, s.next_retry_due())));
    }
    s.in_flight = s.pending.size();
    if (Clock::now() - last_commit >= s.options.commit_interval) {
      s.records->commit();
      last_commit = Clock::now();
    }
  }
  // Finish what was started: outputs in flight get their verdicts (retries included), bounded.
  s.finish_in_flight(s.options.drain_timeout);
  if (!s.pending.empty()) {
    spdlog::warn("{}: stopping with {} records unfinished; they will be consumed again", s.options.name,
                 s.pending.size());
  }
  s.records->commit(true);
}

}  // namespace pix::saga
