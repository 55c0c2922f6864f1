#pragma once
/// @file Configuration of a saga stage process: flags, each with an environment variable.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "pix/amqp/url.hpp"
#include "pix/kafka/client_flags.hpp"
#include "pix/saga/stage_app.hpp"
#include "pix/util/cli.hpp"

namespace pix::saga {

/// @brief Everything `pix-<stage>` can be told. Defaults match the README's stage flags.
struct StageConfig {
  StageKind kind = StageKind::kAntifraud;
  std::string name;  ///< antifraud, settlement, notifier, auditor
  kafka::ClientFlags kafka;
  /// librdkafka properties: TLS/SASL from the --kafka-* flags, then --kafka-option key=value
  std::map<std::string, std::string> kafka_properties;
  std::string topic_prefix;
  std::string group;  ///< the stage's name unless given
  std::string instance_id;
  /// --rabbit-url with the password and TLS files folded in (notifier and auditor only)
  std::optional<amqp::AmqpUrl> rabbit;
  std::string exchange = "pix";
  std::string notification_queue = "pix.notification.sent";
  std::string admin_listen = "127.0.0.1";
  int admin_port = 0;  ///< 9101..9104 by stage unless given
  /// Bound of each wait for outputs in flight: at the stop, before a rebalance gives partitions
  /// away, and for each publisher's drain at exit.
  std::chrono::milliseconds drain_timeout{10000};
  std::string db;  ///< settlement: ledger.db, auditor: audit.db
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

/// Nothing to run: what to print and the exit code (0 for --help; CLI11's code for a bad flag;
/// 2 for a bad combination or broker option).
using ParseExit = util::ParseExit;

/// The stage whose decisions `kind` acts on ("antifraud" for settlement, "settlement" for the
/// notifier), empty for none.
std::string upstream_of(StageKind kind);
/// Whether `kind` signs its decisions (antifraud and settlement).
bool signs(StageKind kind);

/// Parse flags (argv) with environment fallbacks (PIX_*). Never exits the process itself.
std::variant<StageConfig, ParseExit> parse_stage_config(StageKind kind, int argc, const char* const* argv);

}  // namespace pix::saga
