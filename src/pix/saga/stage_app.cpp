#include "pix/saga/stage_app.hpp"

#include <spdlog/spdlog.h>
#include "pix/util/cli.hpp"
#include "pix/util/hash.hpp"

#include <atomic>
#include <csignal>
#include <deque>
#include <fstream>
#include <sstream>
#include <thread>

#include "pix/amqp/client_flags.hpp"
#include "pix/amqp/confirm_publisher.hpp"
#include "pix/amqp/consumer.hpp"
#include "pix/domain/amount.hpp"
#include "pix/domain/topics.hpp"
#include "pix/service/admin_server.hpp"
#include "pix/kafka/client_flags.hpp"
#include "pix/kafka/partition_reader.hpp"
#include "pix/kafka/producer.hpp"
#include "pix/saga/handlers.hpp"
#include "pix/saga/provenance.hpp"
#include "pix/telemetry/logging.hpp"
#include "pix/telemetry/tracer.hpp"

namespace pix::saga {
namespace {

std::atomic<bool> g_stop{false};

struct StageConfig {
  std::string name;
  kafka::ClientFlags kafka;  ///< bootstrap, TLS/SASL, --kafka-option
  std::string topic_prefix;
  std::string group;
  std::string instance_id;
  amqp::ClientFlags rabbit;
  std::string exchange = "pix";
  std::string notification_queue = "pix.notification.sent";
  std::string admin_listen = "127.0.0.1";
  int admin_port = 0;
  std::string db;
  std::string rules;
  std::vector<std::string> fund;
  int population = 0;
  std::string population_balance = "50000.00";
  std::string log_level = "info";
  std::string log_format = "json";
  std::string decision_key;             ///< this stage's signing key (antifraud, settlement)
  std::vector<std::string> trust_keys;  ///< the upstream stage's keys (settlement, notifier)
  bool allow_unsigned = false;
};

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

std::string fnv_hex(std::string_view s) {
  const std::uint64_t h = util::fnv1a64(s);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

/// The auditor's second input: notifications on RabbitMQ. Each delivery is appended, its audit
/// event published, and only then acked. A publish that fails (Kafka down) is retried with
/// backoff while the delivery stays unacked: never rejected and requeued, which would loop hot
/// and, on quorum queues, count towards their delivery limit until the notification is
/// dead-lettered. The prefetch window bounds how many are held; on shutdown the held ones are
/// left unacked and RabbitMQ redelivers them (the store de-duplicates).
void audit_notifications(const StageConfig& c, const amqp::AmqpUrl& url, Auditor& auditor, broker::Publisher& out,
                         telemetry::Registry& metrics, telemetry::Tracer& tracer) {
  using Clock = std::chrono::steady_clock;
  amqp::ConsumerOptions o;
  o.url = url;
  o.queue = c.notification_queue;
  o.connection_name = c.name + " (notifications)";
  amqp::AmqpConsumer consumer(o);
  auto& consumed =
      metrics.counter("pix_stage_consumed_total", "", {{"stage", c.name}, {"topic", "amqp:" + c.notification_queue}});
  auto& retried = metrics.counter("pix_stage_retries_total", "", {{"stage", c.name}});
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
  std::mutex mu;
  std::vector<Verdict> verdicts;
  std::deque<Held> waiting;  // failed publishes, oldest first, each due after its backoff
  std::size_t publishing = 0;
  auto publish = [&](Held h) {
    ++publishing;
    broker::OutboundEvent copy = h.event;  // kept for a retry
    out.publish(std::move(copy), [&mu, &verdicts, h = std::move(h)](broker::PublishResult r) mutable {
      std::lock_guard lock(mu);
      verdicts.push_back({std::move(h), std::move(r)});
    });
  };
  while (!g_stop.load() || publishing > 0) {
    std::vector<Verdict> ready;
    {
      std::lock_guard lock(mu);
      ready.swap(verdicts);
    }
    const auto now = Clock::now();
    for (auto& v : ready) {
      --publishing;
      if (v.result.status == broker::PublishStatus::kAcked) {
        v.held.send->set("messaging.destination.partition.id", std::to_string(v.result.partition))
            .set("messaging.kafka.offset", v.result.offset)
            .end();
        consumer.ack(v.held.delivery);
        continue;
      }
      const auto backoff =
          std::min(std::chrono::milliseconds(200L << std::min(v.held.attempt, 5)), std::chrono::milliseconds(5000));
      if (v.held.attempt == 0 || v.held.attempt % 10 == 0) {
        spdlog::warn("{}: audit event {} not acknowledged ({}); holding the notification and retrying", c.name,
                     v.held.event.id, v.result.detail);
      }
      ++v.held.attempt;
      v.held.due = now + backoff;
      waiting.push_back(std::move(v.held));
    }
    while (!g_stop.load() && !waiting.empty() && waiting.front().due <= now) {
      retried.inc();
      publish(std::move(waiting.front()));
      waiting.pop_front();
    }
    if (g_stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    auto d = consumer.next(std::chrono::milliseconds(100));
    if (!d) continue;
    consumed.inc();
    // A message without an id gets one from its content, so a redelivery maps to the same entry.
    const std::string id = d->message_id.empty() ? "amqp:" + d->routing_key + ":" + fnv_hex(d->body) : d->message_id;
    auto span = std::make_shared<telemetry::Span>(tracer.start("process " + c.notification_queue,
                                                               telemetry::SpanKind::kConsumer,
                                                               telemetry::parse_traceparent(d->header("traceparent"))));
    span->set("messaging.system", "rabbitmq")
        .set("messaging.operation.type", "process")
        .set("messaging.operation.name", "process")
        .set("messaging.destination.name", c.notification_queue)
        .set("messaging.rabbitmq.destination.routing_key", d->routing_key)
        .set("messaging.message.id", id)
        .set("pix.stage", c.name);
    broker::OutboundEvent ev;
    {
      const telemetry::ActiveSpan active(*span);
      ev = auditor.audit(id, "amqp:" + d->routing_key, d->body, d->header("traceparent"),
                         d->header("cloudEvents_source"));
    }
    ev.topic = c.topic_prefix + ev.topic;
    auto send = std::make_shared<telemetry::Span>(span->child("send " + ev.topic, telemetry::SpanKind::kProducer));
    send->set("messaging.system", "kafka")
        .set("messaging.operation.type", "send")
        .set("messaging.operation.name", "send")
        .set("messaging.destination.name", ev.topic)
        .set("messaging.message.id", ev.id)
        .set("messaging.kafka.message.key", ev.key);
    if (send->valid()) ev.set_header("traceparent", send->context().to_traceparent());
    publish(Held{std::move(*d), std::move(ev), 0, {}, std::move(span), std::move(send)});
  }
  if (!waiting.empty()) {
    spdlog::warn("{}: stopping with {} notification(s) not yet audited on Kafka; RabbitMQ redelivers them", c.name,
                 waiting.size());
  }
}

/// The stage whose decisions `kind` acts on (empty: none), and whether it signs its own.
std::string upstream_of(StageKind kind) {
  if (kind == StageKind::kSettlement) return "antifraud";
  if (kind == StageKind::kNotifier) return "settlement";
  return {};
}
bool signs(StageKind kind) {
  return kind == StageKind::kAntifraud || kind == StageKind::kSettlement;
}

/// The keys of the stage, loaded; std::invalid_argument when one is missing without
/// --allow-unsigned.
std::shared_ptr<const Provenance> load_provenance(StageKind kind, const StageConfig& c) {
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
                          const std::map<std::string, std::string>& kafka_properties, StageOptions& so,
                          telemetry::Registry& metrics) {
  kafka::ReaderOptions ro;
  ro.bootstrap_servers = c.kafka.bootstrap;
  ro.client_id = c.name + "-verdicts";
  ro.extra = kafka_properties;
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

}  // namespace

int run_stage_app(StageKind kind, int argc, char** argv) {
  StageConfig c;
  int default_port = 0;
  switch (kind) {
    case StageKind::kAntifraud:
      c.name = "antifraud";
      default_port = 9101;
      break;
    case StageKind::kSettlement:
      c.name = "settlement";
      default_port = 9102;
      c.db = "ledger.db";
      break;
    case StageKind::kNotifier:
      c.name = "notifier";
      default_port = 9103;
      break;
    case StageKind::kAuditor:
      c.name = "auditor";
      default_port = 9104;
      c.db = "audit.db";
      break;
  }
  c.admin_port = default_port;
  c.group = c.name;
  CLI::App app{"pix-" + c.name + ": a stage of the PIX payment saga (at-least-once, idempotent effects)"};
  kafka::add_client_flags(app, c.kafka);
  util::add_topic_prefix_option(app, c.topic_prefix);
  app.add_option("--group", c.group, "Kafka consumer group")->envname("PIX_GROUP")->capture_default_str();
  app.add_option("--instance-id", c.instance_id,
                 "static group membership id, unique per replica (e.g. the pod name): a restart resumes at once")
      ->envname("PIX_INSTANCE_ID");
  app.add_option("--admin-listen", c.admin_listen, "address of /healthz /readyz /metrics")
      ->envname("PIX_ADMIN_LISTEN")
      ->capture_default_str();
  app.add_option("--admin-port", c.admin_port, "port of /healthz /readyz /metrics (0: any free one)")
      ->envname("PIX_ADMIN_PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  util::add_log_options(app, c.log_level, c.log_format);
  if (kind == StageKind::kNotifier || kind == StageKind::kAuditor) {
    amqp::add_client_flags(app, c.rabbit);
  }
  if (kind == StageKind::kNotifier) {
    app.add_option("--exchange", c.exchange, "RabbitMQ exchange for notifications")
        ->envname("PIX_EXCHANGE")
        ->capture_default_str();
  }
  if (kind == StageKind::kAuditor) {
    app.add_option("--notification-queue", c.notification_queue, "RabbitMQ queue of notifications to audit")
        ->envname("PIX_NOTIFICATION_QUEUE")
        ->capture_default_str();
  }
  if (kind == StageKind::kSettlement || kind == StageKind::kAuditor) {
    app.add_option("--db", c.db, kind == StageKind::kSettlement ? "ledger file (SQLite)" : "audit store (SQLite)")
        ->envname(kind == StageKind::kSettlement ? "PIX_LEDGER_DB" : "PIX_AUDIT_DB")
        ->capture_default_str();
  }
  if (kind == StageKind::kAntifraud) {
    app.add_option("--rules", c.rules, "rules file (JSON; see README); default: built-in limits")
        ->envname("PIX_RULES_FILE");
  }
  if (kind == StageKind::kSettlement) {
    c.fund = {"alice=100000.00", "bob=100000.00", "carol=100000.00", "dave=100000.00", "erin=100000.00"};
    app.add_option("--fund", c.fund, "accounts opened with a balance on first start, name=amount (repeatable)")
        ->envname("PIX_FUND")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--population", c.population, "also open pix-0001..pix-N (the simulator's accounts)")
        ->envname("PIX_POPULATION")
        ->check(CLI::Range(0, 1000000))
        ->capture_default_str();
    app.add_option("--population-balance", c.population_balance, "opening balance of each population account")
        ->envname("PIX_POPULATION_BALANCE")
        ->capture_default_str();
  }
  if (signs(kind)) {
    app.add_option("--decision-key", c.decision_key,
                   "key file this stage signs its decisions with (pix-admin decision-key)")
        ->envname("PIX_DECISION_KEY")
        ->check(CLI::ExistingFile);
  }
  if (!upstream_of(kind).empty()) {
    app.add_option("--trust-key", c.trust_keys,
                   "key file of the " + upstream_of(kind) +
                       " stage whose signed decisions alone are acted on (repeatable: "
                       "old and new during a rotation)")
        ->envname("PIX_TRUST_KEYS")
        ->delimiter(',')
        ->check(CLI::ExistingFile);
  }
  if (signs(kind) || !upstream_of(kind).empty()) {
    app.add_flag("--allow-unsigned", c.allow_unsigned,
                 "run without decision keys: unsigned decisions out, unsigned records acted on (development only)")
        ->envname("PIX_ALLOW_UNSIGNED");
  }
  CLI11_PARSE(app, argc, argv);
  std::string option_error;
  const auto kafka_properties = kafka::client_properties(c.kafka, option_error);
  if (!kafka_properties) {
    std::fprintf(stderr, "%s\n", option_error.c_str());
    return 2;
  }
  std::optional<amqp::AmqpUrl> rabbit_url;
  if (kind == StageKind::kNotifier || kind == StageKind::kAuditor) {
    auto parsed = amqp::resolve_url(c.rabbit);
    if (!parsed) {
      std::fprintf(stderr, "%s\n", parsed.error.c_str());
      return 2;
    }
    rabbit_url = *parsed.url;
  }
  telemetry::setup_logging(c.name, c.log_level, c.log_format);
  std::shared_ptr<const Provenance> provenance;
  try {
    provenance = load_provenance(kind, c);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pix-%s: %s\n", c.name.c_str(), e.what());
    return 2;
  }
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });

  try {
    telemetry::Registry metrics;
    telemetry::register_build_info(metrics, c.name);
    auto tracer = telemetry::tracer_from_env(c.name, metrics);
    kafka::ProducerOptions po;
    po.bootstrap_servers = c.kafka.bootstrap;
    po.extra = *kafka_properties;
    po.client_id = c.name;
    po.ack_timeout = std::chrono::seconds(10);
    po.max_in_flight = 50000;
    kafka::KafkaPublisher kafka_out(po);

    std::unique_ptr<amqp::ConfirmPublisher> rabbit_out;
    if (kind == StageKind::kNotifier) {
      amqp::ConfirmPublisher::Options ro;
      ro.url = *rabbit_url;
      ro.exchange = c.exchange;
      ro.confirm_timeout = std::chrono::seconds(10);
      ro.connection_name = c.name;
      rabbit_out = std::make_unique<amqp::ConfirmPublisher>(std::move(ro));
    }

    StageOptions so;
    so.name = c.name;
    so.dead_letter_topic = c.topic_prefix + std::string(kDeadLetterTopic);
    so.consumer.bootstrap_servers = c.kafka.bootstrap;
    so.consumer.extra = *kafka_properties;
    so.consumer.group_id = c.group;
    so.consumer.instance_id = c.instance_id;
    so.tracer = tracer.get();
    so.rabbit_exchange = c.exchange;
    Handler handler;
    std::shared_ptr<Auditor> auditor;
    switch (kind) {
      case StageKind::kAntifraud: {
        antifraud::RulesConfig rules;
        if (!c.rules.empty()) {
          auto loaded = antifraud::load_rules_config(read_file(c.rules));
          if (!loaded) throw std::invalid_argument("--rules " + c.rules + ": " + loaded.error);
          rules = *loaded.config;
        }
        so.consumer.topics = {topic(c, domain::Topic::kPaymentRequested)};
        handler = antifraud_handler(c, std::move(rules), *provenance, *kafka_properties, so, metrics);
        break;
      }
      case StageKind::kSettlement: {
        auto ledger = std::make_shared<ledger::Ledger>(c.db);
        const auto report = ledger->fund(funding_of(c));
        spdlog::info("ledger {}: {} account(s) funded now, {} already open, total balance {}", c.db, report.funded,
                     report.already_open, ledger->total_balance());
        so.consumer.topics = {topic(c, domain::Topic::kPaymentValidated)};
        handler = SettlementHandler(std::move(ledger));
        break;
      }
      case StageKind::kNotifier:
        so.consumer.topics = {topic(c, domain::Topic::kPaymentSettled)};
        handler = NotifierHandler();
        break;
      case StageKind::kAuditor:
        auditor = std::make_shared<Auditor>(std::make_shared<audit::AuditStore>(c.db));
        // Every PIX topic but its own output: auditing pix.audit.log would audit itself forever.
        so.consumer.topics = {topic(c, domain::Topic::kPaymentRequested), topic(c, domain::Topic::kPaymentValidated),
                              topic(c, domain::Topic::kPaymentSettled), topic(c, domain::Topic::kNotificationSent)};
        handler = [auditor](const kafka::ConsumedRecord& r) { return (*auditor)(r); };
        break;
    }
    KafkaStage stage(so, with_provenance(provenance, c.name, with_prefix(c.topic_prefix, std::move(handler)), metrics),
                     kafka_out, rabbit_out.get(), metrics);

    auto* rabbit_ptr = rabbit_out.get();
    service::AdminServer admin(c.admin_listen, static_cast<std::uint16_t>(c.admin_port), metrics,
                            [&stage, &kafka_out, rabbit_ptr]() -> std::pair<bool, std::string> {
                              if (!kafka_out.broker_up()) return {false, "kafka unreachable"};
                              if (rabbit_ptr && !rabbit_ptr->connected()) return {false, "rabbitmq unreachable"};
                              if (!stage.healthy()) return {false, stage.health_detail()};
                              return {true, "consuming"};
                            });
    spdlog::info("{} started: consuming {} as group {}; admin on http://{}:{}", c.name, so.consumer.topics.front(),
                 c.group, c.admin_listen, admin.port());

    std::thread notifications;
    if (kind == StageKind::kAuditor) {
      notifications = std::thread([&] { audit_notifications(c, *rabbit_url, *auditor, kafka_out, metrics, *tracer); });
    }
    stage.run(g_stop);
    if (notifications.joinable()) notifications.join();
    const std::size_t left =
        kafka_out.drain(std::chrono::seconds(10)) + (rabbit_out ? rabbit_out->drain(std::chrono::seconds(10)) : 0);
    if (!tracer->flush(std::chrono::seconds(5))) spdlog::warn("tracing: spans still queued at exit were dropped");
    spdlog::info("{} stopped{}", c.name, left ? " with events unacknowledged (they will be redone)" : " cleanly");
    return 0;
  } catch (const std::exception& e) {
    spdlog::critical("{} cannot run: {}", c.name, e.what());
    return 1;
  }
}

}  // namespace pix::saga
