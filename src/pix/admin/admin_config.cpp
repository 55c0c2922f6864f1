#include "pix/admin/admin_config.hpp"

#include "pix/amqp/client_flags.hpp"
#include "pix/domain/topics.hpp"
#include "pix/http/url.hpp"
#include "pix/kafka/client_flags.hpp"
#include "pix/telemetry/trace_view.hpp"

namespace pix::admin {
namespace {

const CLI::Validator kJaegerUrl(
    [](std::string& text) {
      std::string error;
      if (!http::parse_url(text, error)) return "not an http(s) URL: " + error;
      return text.find('?') == std::string::npos ? std::string() : "the query API's base URL takes no query: " + text;
    },
    "URL");

const CLI::Validator kLookback(
    [](std::string& text) {
      return telemetry::parse_lookback(text) ? std::string()
                                             : "not a lookback (a count and m, h, d or w, at most 52w): " + text;
    },
    "DURATION");

void add_topology_command(CLI::App& app, AdminConfig& c, kafka::ClientFlags& kafka, amqp::ClientFlags& rabbit) {
  auto* cmd = app.add_subcommand("topology", "create the five topics and the `pix` exchange with its queues");
  auto& t = c.topology;
  kafka::add_client_flags(*cmd, kafka);
  amqp::add_client_flags(*cmd, rabbit);
  cmd->add_option("--exchange", t.rabbit_topology.exchange, "RabbitMQ exchange")
      ->envname("PIX_EXCHANGE")
      ->capture_default_str();
  cmd->add_option("--partitions", t.partitions, "partitions per topic")
      ->envname("PIX_TOPIC_PARTITIONS")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--replication-factor", t.replication_factor, "replicas per partition (-1: min(3, brokers))")
      ->envname("PIX_TOPIC_REPLICATION")
      ->capture_default_str();
  util::add_topic_prefix_option(*cmd, t.topic_prefix);
  cmd->add_option("--queue-prefix", t.rabbit_topology.queue_prefix,
                  "prefix of the RabbitMQ queue names (an isolated copy)")
      ->envname("PIX_QUEUE_PREFIX");
  cmd->add_flag("--delete", t.remove, "delete these topics, exchanges and queues instead (their data too)");
  cmd->add_flag("--kafka-acls", t.kafka_acls,
                "also declare each component's least-privilege ACLs (a cluster with an authorizer; "
                "see README Security)")
      ->envname("PIX_KAFKA_ACLS");
  cmd->add_flag("--skip-kafka", t.skip_kafka, "leave Kafka alone");
  cmd->add_flag("--skip-rabbit", t.skip_rabbit, "leave RabbitMQ alone");
  cmd->callback([&c] { c.command = Command::kTopology; });
}

/// The auditor's store, named the same way by every command that reads it.
void add_audit_db_option(CLI::App& cmd, std::string& audit_db) {
  cmd.add_option("--audit-db", audit_db, "the auditor's store")->envname("PIX_AUDIT_DB")->capture_default_str();
}

void add_report_command(CLI::App& app, AdminConfig& c) {
  auto* cmd = app.add_subcommand("report",
                                 "summary of the saga: counts per stage, rejections by reason, "
                                 "balances conserved, audit chain valid");
  add_audit_db_option(*cmd, c.report.audit_db);
  cmd->add_option("--ledger-db", c.report.ledger_db, "the settlement ledger (optional)")->envname("PIX_LEDGER_DB");
  cmd->add_flag("--json", c.report.json, "print JSON");
  cmd->callback([&c] { c.command = Command::kReport; });
}

void add_verify_command(CLI::App& app, AdminConfig& c, kafka::ClientFlags& kafka, std::string& topic_prefix,
                        bool& anchor_kafka) {
  auto* cmd = app.add_subcommand("verify-audit",
                                 "re-walk the audit hash chain; report the first broken link (and, with "
                                 "--anchor-kafka, a tail cut off)");
  add_audit_db_option(*cmd, c.verify_audit.audit_db);
  cmd->add_flag("--anchor-kafka", anchor_kafka,
                "also check the chain's tail against the entries the auditor announced on pix.audit.log "
                "(exit 3 if cut off or rewritten, 1 if the topic cannot be read)");
  kafka::add_client_flags(*cmd, kafka);
  util::add_topic_prefix_option(*cmd, topic_prefix);
  cmd->callback([&c] { c.command = Command::kVerifyAudit; });
}

void add_decision_key_command(CLI::App& app, AdminConfig& c) {
  auto* cmd = app.add_subcommand("decision-key",
                                 "write a new HMAC key a saga stage signs its decisions with (0600; never overwrites)");
  cmd->add_option("--stage", c.decision_key.stage, "the stage whose decisions it signs")
      ->required()
      ->check(CLI::IsMember({"antifraud", "settlement"}));
  cmd->add_option("--out", c.decision_key.out, "the key file to create")->required();
  cmd->callback([&c] { c.command = Command::kDecisionKey; });
}

void add_trace_command(CLI::App& app, AdminConfig& c) {
  auto* cmd = app.add_subcommand("trace", "print one payment's trace from Jaeger as a waterfall");
  auto& o = c.trace;
  cmd->add_option("id", o.id,
                  "a trace id (32 lowercase hex), or a PIX transactionId: the traces whose spans carry it as "
                  "pix.transaction_id, searched in every service")
      ->required();
  cmd->add_option("--jaeger", o.jaeger, "Jaeger's HTTP query API")
      ->envname("PIX_JAEGER_URL")
      ->check(kJaegerUrl)
      ->capture_default_str();
  cmd->add_option("--lookback", o.lookback, "how far back a transactionId is searched (30m, 1h, 24h, 2d, 1w)")
      ->check(kLookback)
      ->capture_default_str();
  cmd->add_option("--width", o.width, "cells of the timeline bar")->check(CLI::Range(10, 200))->capture_default_str();
  cmd->add_flag("--json", o.json, "print Jaeger's JSON answer instead of the waterfall");
  cmd->callback([&c] { c.command = Command::kTrace; });
}

/// The Kafka flags as a target, or the message naming the flag that is wrong.
std::variant<KafkaTarget, ParseExit> kafka_target(const kafka::ClientFlags& flags) {
  std::string error;
  auto properties = kafka::client_properties(flags, error);
  if (!properties) return ParseExit{2, "pix-admin: " + error + "\n"};
  return KafkaTarget{flags.bootstrap, std::move(*properties)};
}

}  // namespace

std::variant<AdminConfig, ParseExit> parse_admin_config(int argc, const char* const* argv) {
  CLI::App app{"pix-admin: declares the PIX topology on Kafka and RabbitMQ (safe to run again)"};
  app.require_subcommand(1);
  AdminConfig c;
  kafka::ClientFlags kafka_flags;
  amqp::ClientFlags rabbit_flags;
  std::string topic_prefix;  // verify-audit's; topology's is in its config
  bool anchor_kafka = false;
  add_topology_command(app, c, kafka_flags, rabbit_flags);
  add_report_command(app, c);
  add_verify_command(app, c, kafka_flags, topic_prefix, anchor_kafka);
  add_decision_key_command(app, c);
  add_trace_command(app, c);
  if (auto exit = util::parse_or_exit(app, argc, argv)) return *exit;

  if (c.command == Command::kTopology) {
    auto& t = c.topology;
    if (!t.skip_kafka) {
      auto target = kafka_target(kafka_flags);
      if (auto* exit = std::get_if<ParseExit>(&target)) return *exit;
      t.kafka = std::get<KafkaTarget>(std::move(target));
    }
    if (!t.skip_rabbit) {
      auto url = amqp::resolve_url(rabbit_flags);
      if (!url) return ParseExit{2, "pix-admin: " + url.error + "\n"};
      t.rabbit = std::move(url.url);
    }
  }
  if (c.command == Command::kVerifyAudit && anchor_kafka) {
    auto target = kafka_target(kafka_flags);
    if (auto* exit = std::get_if<ParseExit>(&target)) return *exit;
    c.verify_audit.anchor = std::get<KafkaTarget>(std::move(target));
    c.verify_audit.anchor_topic = topic_prefix + std::string(domain::topic_name(domain::Topic::kAuditLog));
  }
  return c;
}

}  // namespace pix::admin
