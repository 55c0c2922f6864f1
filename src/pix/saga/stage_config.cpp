#include "pix/saga/stage_config.hpp"

#include "pix/util/cli.hpp"

#include "pix/amqp/client_flags.hpp"

namespace pix::saga {

namespace {

/// The stage's name, admin port and store by default.
StageConfig defaults_of(StageKind kind) {
  StageConfig c;
  c.kind = kind;
  switch (kind) {
    case StageKind::kAntifraud:
      c.name = "antifraud";
      c.admin_port = 9101;
      break;
    case StageKind::kSettlement:
      c.name = "settlement";
      c.admin_port = 9102;
      c.db = "ledger.db";
      c.fund = {"alice=100000.00", "bob=100000.00", "carol=100000.00", "dave=100000.00", "erin=100000.00"};
      break;
    case StageKind::kNotifier:
      c.name = "notifier";
      c.admin_port = 9103;
      break;
    case StageKind::kAuditor:
      c.name = "auditor";
      c.admin_port = 9104;
      c.db = "audit.db";
      break;
  }
  c.group = c.name;
  return c;
}

bool uses_rabbit(StageKind kind) {
  return kind == StageKind::kNotifier || kind == StageKind::kAuditor;
}

/// The flags only some stages have: stores, rules, funding, RabbitMQ names.
void add_stage_specific_flags(CLI::App& app, StageConfig& c) {
  const StageKind kind = c.kind;
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
}

/// The decision-signature flags: the key a stage signs with, the keys of the stage it trusts.
void add_provenance_flags(CLI::App& app, StageConfig& c) {
  const StageKind kind = c.kind;
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
}

}  // namespace

std::string upstream_of(StageKind kind) {
  if (kind == StageKind::kSettlement) return "antifraud";
  if (kind == StageKind::kNotifier) return "settlement";
  return {};
}

bool signs(StageKind kind) {
  return kind == StageKind::kAntifraud || kind == StageKind::kSettlement;
}

std::variant<StageConfig, ParseExit> parse_stage_config(StageKind kind, int argc, const char* const* argv) {
  StageConfig c = defaults_of(kind);
  long drain_timeout_ms = c.drain_timeout.count();
  amqp::ClientFlags rabbit;
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
  util::add_drain_timeout_option(app, drain_timeout_ms,
                                 " (and before a rebalance gives partitions away), wait this long for the outputs "
                                 "in flight to be acknowledged");
  util::add_log_options(app, c.log_level, c.log_format);
  if (uses_rabbit(kind)) amqp::add_client_flags(app, rabbit);
  add_stage_specific_flags(app, c);
  add_provenance_flags(app, c);

  if (auto exit = util::parse_or_exit(app, argc, argv)) return *exit;

  c.drain_timeout = std::chrono::milliseconds(drain_timeout_ms);
  std::string error;
  auto properties = kafka::client_properties(c.kafka, error);
  if (!properties) return ParseExit{2, error + "\n"};
  c.kafka_properties = std::move(*properties);
  if (uses_rabbit(kind)) {
    auto url = amqp::resolve_url(rabbit);
    if (!url) return ParseExit{2, url.error + "\n"};
    c.rabbit = std::move(*url.url);
  }
  return c;
}

}  // namespace pix::saga
