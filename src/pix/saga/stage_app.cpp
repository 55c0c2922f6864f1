#include "pix/saga/stage_app.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <variant>

#include "pix/amqp/confirm_publisher.hpp"
#include "pix/domain/amount.hpp"
#include "pix/domain/topics.hpp"
#include "pix/kafka/partition_reader.hpp"
#include "pix/kafka/producer.hpp"
#include "pix/saga/handlers.hpp"
#include "pix/saga/notification_audit.hpp"
#include "pix/saga/provenance.hpp"
#include "pix/saga/stage_config.hpp"
#include "pix/service/admin_server.hpp"
#include "pix/service/lifecycle.hpp"
#include "pix/telemetry/logging.hpp"
#include "pix/telemetry/tracer.hpp"

namespace pix::saga {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::int64_t cents_of(const std::string& text, const std::string& what) {
  auto parsed = domain::parse_amount_text(text);
  if (!parsed.cents) throw std::invalid_argument(what + ": " + parsed.error);
  return *parsed.cents;
}

/// `--fund` entries (`name=amount`) and the simulator's population (`pix-0001`...).
std::vector<std::pair<std::string, std::int64_t>> funding_of(const StageConfig& c) {
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (const auto& kv : c.fund) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw std::invalid_argument("--fund expects name=amount, got " + kv);
    out.emplace_back(kv.substr(0, eq), cents_of(kv.substr(eq + 1), "--fund " + kv));
  }
  const auto each = cents_of(c.population_balance, "--population-balance");
  for (int i = 1; i <= c.population; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "pix-%04d", i);
    out.emplace_back(name, each);
  }
  return out;
}

std::string topic(const StageConfig& c, domain::Topic t) {
  return c.topic_prefix + std::string(domain::topic_name(t));
}

/// Gives handlers' outputs the configured topic prefix (they name the canonical topics).
Handler with_prefix(const std::string& prefix, Handler inner) {
  if (prefix.empty()) return inner;
  return [prefix, inner = std::move(inner)](const kafka::ConsumedRecord& r) {
    HandlerResult result = inner(r);
    for (auto& o : result.outputs) {
      if (o.sink == Sink::kKafka) o.event.topic = prefix + o.event.topic;
    }
    return result;
  };
}

/// The keys of the stage, loaded; std::invalid_argument when one is missing without
/// --allow-unsigned.
std::shared_ptr<const Provenance> load_provenance(const StageConfig& c) {
  const StageKind kind = c.kind;
  auto p = std::make_shared<Provenance>();
  if (signs(kind)) {
    if (!c.decision_key.empty()) {
      p->sign = security::load_decision_key(c.decision_key);
      if (p->sign->stage != c.name) {
        throw std::invalid_argument("--decision-key " + c.decision_key + " is a key of stage " + p->sign->stage +
                                    ", not " + c.name);
      }
    } else if (!c.allow_unsigned) {
      throw std::invalid_argument("--decision-key (PIX_DECISION_KEY) is required: the next stage acts only on " +
                                  c.name +
                                  "'s signed decisions (pix-admin decision-key makes one; --allow-unsigned "
                                  "runs without, for development only)");
    }
  }
  const std::string upstream = upstream_of(kind);
  if (!upstream.empty()) {
    if (!c.trust_keys.empty()) {
      std::vector<security::DecisionKey> keys;
      for (const auto& path : c.trust_keys) keys.push_back(security::load_decision_key(path));
      p->verify.emplace(std::move(keys), upstream);
    } else if (!c.allow_unsigned) {
      throw std::invalid_argument("--trust-key (PIX_TRUST_KEYS) is required: " + c.name + " acts only on " + upstream +
                                  "'s signed decisions, and without its key anyone who can write to the topic could "
                                  "decide (--allow-unsigned accepts unsigned records, for development only)");
    }
  }
  if (c.allow_unsigned && (signs(kind) || !upstream.empty())) {
    spdlog::warn("{}: --allow-unsigned: {}{} (development only)", c.name, p->sign ? "" : "decisions go out unsigned",
                 upstream.empty() || p->verify
                     ? ""
                     : std::string(p->sign ? "" : "; ") + "records not signed by " + upstream + " are acted on");
  }
  return p;
}

/// Anti-fraud with its verdicts read back from the validated topic (partition p holds the
/// verdicts on requested partition p, so both topics must have as many partitions), trusting
/// only records its own key signed, and dropping a partition's state when it is revoked.
Handler antifraud_handler(const StageConfig& c, antifraud::RulesConfig rules, const Provenance& provenance,
                          StageOptions& so, telemetry::Registry& metrics) {
  kafka::ReaderOptions ro;
  ro.bootstrap_servers = c.kafka.bootstrap;
  ro.client_id = c.name + "-verdicts";
  ro.extra = c.kafka_properties;
  auto reader = std::make_shared<kafka::PartitionReader>(ro);
  const std::string requested = topic(c, domain::Topic::kPaymentRequested);
  const std::string validated = topic(c, domain::Topic::kPaymentValidated);
  const auto in = reader->partition_count(requested);
  const auto out = reader->partition_count(validated);
  if (in != out) {
    throw std::invalid_argument(requested + " has " + std::to_string(in) + " partitions and " + validated + " " +
                                std::to_string(out) +
                                ": anti-fraud writes each verdict to the partition number it "
                                "read the request from, so they must be equal (pix-admin topology declares both)");
  }
  auto* restored = &metrics.counter("pix_antifraud_verdicts_restored_total",
                                    "Verdicts read back from pix.payment.validated when a partition was assigned");
  AntifraudOptions o;
  o.rules = std::move(rules);
  o.verdicts = [reader, validated, restored, name = c.name](
                   std::int32_t partition, std::int64_t since_ms,
                   const std::function<void(const kafka::ConsumedRecord&)>& each) {
    const auto started = std::chrono::steady_clock::now();
    const auto n = reader->read_since(validated, partition, since_ms, each);
    restored->inc(n);
    spdlog::info("{}: {}/{}: {} earlier verdict(s) read back in {:.3f} s", name, validated, partition, n,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  };
  if (provenance.sign) {
    auto own =
        std::make_shared<security::DecisionVerifier>(std::vector<security::DecisionKey>{*provenance.sign}, c.name);
    o.own = [own](const kafka::ConsumedRecord& r) { return !verify_record(*own, r).has_value(); };
  }
  auto handler = std::make_shared<AntifraudHandler>(std::move(o));
  so.on_revoked = [handler](const std::string&, std::int32_t partition) { handler->forget(partition); };
  return [handler](const kafka::ConsumedRecord& r) { return (*handler)(r); };
}

/// @brief Where the stage's outputs go: Kafka, and for the notifier RabbitMQ too.
struct Publishers {
  std::unique_ptr<kafka::KafkaPublisher> kafka;
  std::unique_ptr<amqp::ConfirmPublisher> rabbit;  ///< notifier only

  /// Takes no new outputs and waits, each publisher for up to `timeout`, for the verdicts of
  /// those handed over; how many are left without one. May block.
  std::size_t drain(std::chrono::milliseconds timeout) {
    return kafka->drain(timeout) + (rabbit ? rabbit->drain(timeout) : 0);
  }
};

Publishers make_publishers(const StageConfig& c) {
  Publishers out;
  kafka::ProducerOptions po;
  po.bootstrap_servers = c.kafka.bootstrap;
  po.extra = c.kafka_properties;
  po.client_id = c.name;
  po.ack_timeout = std::chrono::seconds(10);
  po.max_in_flight = 50000;
  out.kafka = std::make_unique<kafka::KafkaPublisher>(po);
  if (c.kind == StageKind::kNotifier) {
    amqp::ConfirmPublisher::Options ro;
    ro.url = *c.rabbit;
    ro.exchange = c.exchange;
    ro.confirm_timeout = std::chrono::seconds(10);
    ro.connection_name = c.name;
    out.rabbit = std::make_unique<amqp::ConfirmPublisher>(std::move(ro));
  }
  return out;
}

/// @brief The stage's loop settings and its handler, with the store the handler writes.
struct StageParts {
  StageOptions options;
  Handler handler;
  std::shared_ptr<Auditor> auditor;  ///< auditor only: its notification thread appends too
};

StageOptions stage_options(const StageConfig& c, telemetry::Tracer* tracer) {
  StageOptions so;
  so.name = c.name;
  so.dead_letter_topic = c.topic_prefix + std::string(kDeadLetterTopic);
  so.consumer.bootstrap_servers = c.kafka.bootstrap;
  so.consumer.extra = c.kafka_properties;
  so.consumer.group_id = c.group;
  so.consumer.instance_id = c.instance_id;
  so.drain_timeout = c.drain_timeout;
  so.tracer = tracer;
  so.rabbit_exchange = c.exchange;
  return so;
}

/// Opens the stage's store (ledger, audit store) and makes its handler, topic prefix and
/// provenance (verify in, sign out) included.
StageParts build_stage(const StageConfig& c, std::shared_ptr<const Provenance> provenance, telemetry::Registry& metrics,
                       telemetry::Tracer* tracer) {
  StageParts parts{stage_options(c, tracer), {}, {}};
  auto& topics = parts.options.consumer.topics;
  Handler handler;
  switch (c.kind) {
    case StageKind::kAntifraud: {
      antifraud::RulesConfig rules;
      if (!c.rules.empty()) {
        auto loaded = antifraud::load_rules_config(read_file(c.rules));
        if (!loaded) throw std::invalid_argument("--rules " + c.rules + ": " + loaded.error);
        rules = *loaded.config;
      }
      topics = {topic(c, domain::Topic::kPaymentRequested)};
      handler = antifraud_handler(c, std::move(rules), *provenance, parts.options, metrics);
      break;
    }
    case StageKind::kSettlement: {
      auto ledger = std::make_shared<ledger::Ledger>(c.db);
      const auto report = ledger->fund(funding_of(c));
      spdlog::info("ledger {}: {} account(s) funded now, {} already open, total balance {}", c.db, report.funded,
                   report.already_open, ledger->total_balance());
      topics = {topic(c, domain::Topic::kPaymentValidated)};
      handler = SettlementHandler(std::move(ledger));
      break;
    }
    case StageKind::kNotifier:
      topics = {topic(c, domain::Topic::kPaymentSettled)};
      handler = NotifierHandler();
      break;
    case StageKind::kAuditor: {
      auto auditor = std::make_shared<Auditor>(std::make_shared<audit::AuditStore>(c.db));
      // Every PIX topic but its own output: auditing pix.audit.log would audit itself forever.
      topics = {topic(c, domain::Topic::kPaymentRequested), topic(c, domain::Topic::kPaymentValidated),
                topic(c, domain::Topic::kPaymentSettled), topic(c, domain::Topic::kNotificationSent)};
      handler = [auditor](const kafka::ConsumedRecord& r) { return (*auditor)(r); };
      parts.auditor = std::move(auditor);
      break;
    }
  }
  parts.handler =
      with_provenance(std::move(provenance), c.name, with_prefix(c.topic_prefix, std::move(handler)), metrics);
  return parts;
}

/// @brief The auditor's RabbitMQ input, on a thread of its own. A failure there (the audit
/// store) is logged and asks for the stop, so the process ends through the normal path (the
/// Kafka loop finishes and commits) and exits 1 rather than by std::terminate.
class NotificationThread {
 public:
  NotificationThread(const StageConfig& c, Auditor& auditor, broker::Publisher& out, telemetry::Registry& metrics,
                     telemetry::Tracer& tracer, service::StopSource& stop)
      : stop_(stop), options_{c.name, c.notification_queue, c.topic_prefix, c.drain_timeout} {
    thread_ = std::thread([this, &c, &auditor, &out, &metrics, &tracer] {
      try {
        audit_notifications(options_, *c.rabbit, auditor, out, metrics, tracer, stop_);
      } catch (const std::exception& e) {
        fail(e.what());
      } catch (...) {
        fail("unknown exception");
      }
    });
  }
  /// Joins: asks for the stop first, or an exception out of the Kafka loop would wait here
  /// forever. May block for the drain timeout.
  ~NotificationThread() {
    stop_.request_stop(options_.stage + " is stopping");
    join();
  }
  NotificationThread(const NotificationThread&) = delete;
  NotificationThread& operator=(const NotificationThread&) = delete;

  void join() {
    if (thread_.joinable()) thread_.join();
  }
  /// Why the thread failed, empty if it did not; read after join().
  const std::string& failure() const { return failure_; }

 private:
  void fail(const std::string& reason) {
    failure_ = reason;
    spdlog::critical("{}: auditing notifications failed: {}; stopping", options_.stage, reason);
    stop_.request_stop("notification audit failed: " + reason);
  }

  service::StopSource& stop_;
  NotificationAuditOptions options_;
  std::string failure_;
  std::thread thread_;
};

/// Everything of a stage after its flags: publishers, store, loop, admin endpoint; consumes
/// until `stop`, then drains. The exit code.
int run_stage(const StageConfig& c, std::shared_ptr<const Provenance> provenance, service::StopSource& stop) {
  telemetry::Registry metrics;
  telemetry::register_build_info(metrics, c.name);
  auto tracer = telemetry::tracer_from_env(c.name, metrics);
  // Made before the stage (which takes references to them), so destroyed after it. The stage's
  // publish callbacks do not point into the stage (they hold its verdict queue), and the
  // publishers are drained below before anything is destroyed.
  Publishers out = make_publishers(c);
  StageParts parts = build_stage(c, std::move(provenance), metrics, tracer.get());
  KafkaStage stage(parts.options, std::move(parts.handler), *out.kafka, out.rabbit.get(), metrics);

  service::AdminServer admin(c.admin_listen, static_cast<std::uint16_t>(c.admin_port), metrics,
                             [&stage, &out]() -> std::pair<bool, std::string> {
                               if (!out.kafka->broker_up()) return {false, "kafka unreachable"};
                               if (out.rabbit && !out.rabbit->connected()) return {false, "rabbitmq unreachable"};
                               if (!stage.healthy()) return {false, stage.health_detail()};
                               return {true, "consuming"};
                             });
  spdlog::info("{} started: consuming {} as group {}; admin on http://{}:{}", c.name,
               parts.options.consumer.topics.front(), c.group, c.admin_listen, admin.port());

  std::optional<NotificationThread> notifications;
  if (parts.auditor) notifications.emplace(c, *parts.auditor, *out.kafka, metrics, *tracer, stop);
  stage.run(stop);
  if (notifications) notifications->join();
  const std::size_t left = out.drain(c.drain_timeout);
  if (!tracer->flush(std::chrono::seconds(5))) spdlog::warn("tracing: spans still queued at exit were dropped");
  if (notifications && !notifications->failure().empty()) {
    spdlog::error("{} stopped: {}", c.name, stop.reason());
    return 1;
  }
  spdlog::info("{} stopped{}", c.name, left ? " with events unacknowledged (they will be redone)" : " cleanly");
  return 0;
}

}  // namespace

int run_stage_app(StageKind kind, int argc, char** argv) {
  auto parsed = parse_stage_config(kind, argc, argv);
  if (auto* exit = std::get_if<ParseExit>(&parsed)) {
    std::fputs(exit->message.c_str(), exit->code == 0 ? stdout : stderr);
    return exit->code;
  }
  const auto& c = std::get<StageConfig>(parsed);
  telemetry::setup_logging(c.name, c.log_level, c.log_format);
  std::shared_ptr<const Provenance> provenance;
  try {
    provenance = load_provenance(c);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pix-%s: %s\n", c.name.c_str(), e.what());
    return 2;
  }

  try {
    // Nothing above starts a thread; this must come before any does (librdkafka's, rabbitmq's, the
    // tracer's, the admin endpoint's): SIGTERM/SIGINT become stop.request_stop("signal SIGTERM").
    service::StopSource stop;
    const service::SignalWatcher signals(stop);
    return run_stage(c, std::move(provenance), stop);
  } catch (const std::exception& e) {
    spdlog::critical("{} cannot run: {}", c.name, e.what());
    return 1;
  }
}

}  // namespace pix::saga
