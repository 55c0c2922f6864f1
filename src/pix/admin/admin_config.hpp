#pragma once
/// @file pix-admin's command line, parsed into one struct per subcommand (tested without brokers).

#include <map>
#include <optional>
#include <string>
#include <variant>

#include "pix/amqp/topology.hpp"
#include "pix/amqp/url.hpp"
#include "pix/util/cli.hpp"

namespace pix::admin {

using ParseExit = util::ParseExit;

/// @brief A Kafka cluster as the client flags name it, its properties already checked.
struct KafkaTarget {
  std::string bootstrap;
  std::map<std::string, std::string> properties;  ///< client_properties() of the Kafka flags
};

/// @brief `topology`: the five topics (and the dead-letter topic), ACLs, the `pix` exchange.
struct TopologyConfig {
  KafkaTarget kafka;
  std::string topic_prefix;
  int partitions = 3;
  int replication_factor = -1;  ///< -1: min(3, brokers)
  bool kafka_acls = false;
  bool skip_kafka = false;
  bool skip_rabbit = false;
  /// Resolved from the AMQP flags unless --skip-rabbit.
  std::optional<amqp::AmqpUrl> rabbit;
  amqp::TopologyOptions rabbit_topology;  ///< exchange and queue prefix
  bool remove = false;                    ///< --delete
};

/// @brief `report`: the saga's summary from the auditor's store (and the ledger).
struct ReportConfig {
  std::string audit_db = "audit.db";
  std::string ledger_db;  ///< empty: balances are not checked
  bool json = false;
};

/// @brief `verify-audit`: the hash chain, and with --anchor-kafka its tail against pix.audit.log.
struct VerifyAuditConfig {
  std::string audit_db = "audit.db";
  std::optional<KafkaTarget> anchor;  ///< set with --anchor-kafka
  std::string anchor_topic;           ///< <prefix>pix.audit.log
};

/// @brief `decision-key`: a new HMAC key for a stage's signed decisions.
struct DecisionKeyConfig {
  std::string stage;  ///< antifraud or settlement
  std::string out;    ///< the file to create (never overwritten)
};

/// @brief `trace`: one payment's trace from Jaeger.
struct TraceConfig {
  std::string id;  ///< a trace id, or a PIX transactionId
  std::string jaeger = "http://127.0.0.1:16686";
  std::string lookback = "24h";
  int width = 30;
  bool json = false;
};

enum class Command { kTopology, kReport, kVerifyAudit, kDecisionKey, kTrace };

/// @brief The subcommand to run and its options; only the member of `command` is meaningful.
struct AdminConfig {
  Command command = Command::kTopology;
  TopologyConfig topology;
  ReportConfig report;
  VerifyAuditConfig verify_audit;
  DecisionKeyConfig decision_key;
  TraceConfig trace;
};

/// The command line (and the PIX_* environment) as a config, or how the program ends instead:
/// `--help` (code 0), or a flag that is wrong or missing (code 2, the message naming it). The
/// Kafka and AMQP flags are checked here, so a bad one stops the command before it changes anything.
std::variant<AdminConfig, ParseExit> parse_admin_config(int argc, const char* const* argv);

}  // namespace pix::admin
