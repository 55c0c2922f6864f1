// pix-admin: declares the Kafka topics and the RabbitMQ topology, idempotently.
#include "pix/util/cli.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "pix/amqp/client_flags.hpp"
#include "pix/amqp/topology.hpp"
#include "pix/amqp/url.hpp"
#include "pix/domain/topics.hpp"
#include "pix/kafka/acls.hpp"
#include "pix/kafka/admin.hpp"
#include "pix/kafka/client_flags.hpp"
#include "pix/saga/handlers.hpp"
#include "pix/saga/report.hpp"
#include "pix/security/decision_signature.hpp"

namespace {

/// Writes a new decision key for `stage` to `path` (0600, never over an existing file).
int write_decision_key(const std::string& stage, const std::string& path) {
  const std::string doc = pix::security::generate_decision_key_json(stage);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "pix-admin: %s: %s%s\n", path.c_str(), std::strerror(errno),
                 errno == EEXIST ? " (a key is never overwritten: remove it first to replace it)" : "");
    return 1;
  }
  const bool written = ::write(fd, doc.data(), doc.size()) == static_cast<ssize_t>(doc.size());
  if (::close(fd) != 0 || !written) {
    std::fprintf(stderr, "pix-admin: %s: write failed\n", path.c_str());
    ::unlink(path.c_str());
    return 1;
  }
  std::printf("%s: decision key %s of stage %s\n", path.c_str(), pix::security::parse_decision_key(doc).kid.c_str(),
              stage.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pix-admin: declares the PIX topology on Kafka and RabbitMQ (safe to run again)"};
  app.require_subcommand(1);

  pix::kafka::ClientFlags kafka_flags;
  pix::amqp::ClientFlags rabbit_flags;
  std::string exchange = "pix";
  int partitions = 3;
  int replication = -1;
  bool skip_kafka = false, skip_rabbit = false;

  auto* topology = app.add_subcommand("topology", "create the five topics and the `pix` exchange with its queues");
  pix::kafka::add_client_flags(*topology, kafka_flags);
  pix::amqp::add_client_flags(*topology, rabbit_flags);
  topology->add_option("--exchange", exchange, "RabbitMQ exchange")->envname("PIX_EXCHANGE")->capture_default_str();
  topology->add_option("--partitions", partitions, "partitions per topic")
      ->envname("PIX_TOPIC_PARTITIONS")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  topology->add_option("--replication-factor", replication, "replicas per partition (-1: min(3, brokers))")
      ->envname("PIX_TOPIC_REPLICATION")
      ->capture_default_str();
  std::string topic_prefix;
  pix::util::add_topic_prefix_option(*topology, topic_prefix);
  std::string queue_prefix;
  bool remove = false;
  topology->add_option("--queue-prefix", queue_prefix, "prefix of the RabbitMQ queue names (an isolated copy)")
      ->envname("PIX_QUEUE_PREFIX");
  topology->add_flag("--delete", remove, "delete these topics, exchanges and queues instead (their data too)");
  bool acls = false;
  topology
      ->add_flag("--kafka-acls", acls,
                 "also declare each component's least-privilege ACLs (a cluster with an authorizer; "
                 "see README Security)")
      ->envname("PIX_KAFKA_ACLS");
  topology->add_flag("--skip-kafka", skip_kafka, "leave Kafka alone");
  topology->add_flag("--skip-rabbit", skip_rabbit, "leave RabbitMQ alone");

  std::string audit_db = "audit.db", ledger_db;
  bool as_json = false;
  auto* report = app.add_subcommand("report",
                                    "summary of the saga: counts per stage, rejections by reason, "
                                    "balances conserved, audit chain valid");
  report->add_option("--audit-db", audit_db, "the auditor's store")->envname("PIX_AUDIT_DB")->capture_default_str();
  report->add_option("--ledger-db", ledger_db, "the settlement ledger (optional)")->envname("PIX_LEDGER_DB");
  report->add_flag("--json", as_json, "print JSON");
  auto* verify = app.add_subcommand("verify-audit", "re-walk the audit hash chain; report the first broken link");
  verify->add_option("--audit-db", audit_db, "the auditor's store")->envname("PIX_AUDIT_DB")->capture_default_str();

  std::string key_stage, key_out;
  auto* decision_key = app.add_subcommand(
      "decision-key", "write a new HMAC key a saga stage signs its decisions with (0600; never overwrites)");
  decision_key->add_option("--stage", key_stage, "the stage whose decisions it signs")
      ->required()
      ->check(CLI::IsMember({"antifraud", "settlement"}));
  decision_key->add_option("--out", key_out, "the key file to create")->required();

  CLI11_PARSE(app, argc, argv);

  try {
    if (*decision_key) return write_decision_key(key_stage, key_out);
    if (*verify) {
      pix::audit::AuditStore store(audit_db);
      const auto r = store.verify([](std::size_t done) { std::fprintf(stderr, "  ... %zu entries verified\n", done); });
      if (r.ok) {
        std::printf("audit chain OK: %zu entries\n", r.entries);
        return 0;
      }
      std::printf("audit chain BROKEN at seq %lld: %s (%zu entries before it are intact)\n",
                  static_cast<long long>(r.first_broken_seq.value_or(-1)), r.reason.c_str(), r.entries);
      return 3;
    }
    if (*report) {
      pix::audit::AuditStore store(audit_db);
      std::unique_ptr<pix::ledger::Ledger> ledger;
      if (!ledger_db.empty()) ledger = std::make_unique<pix::ledger::Ledger>(ledger_db);
      const auto r = pix::saga::build_report(store, ledger.get());
      std::fputs((as_json ? pix::saga::report_json(r) + "\n" : pix::saga::render_report(r)).c_str(), stdout);
      const bool ok = r.chain_valid && (!r.total_balance || *r.total_balance == 0);
      return ok ? 0 : 3;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pix-admin: %s\n", e.what());
    return 1;
  }

  int failures = 0;
  std::string option_error;
  const auto kafka_properties = pix::kafka::client_properties(kafka_flags, option_error);
  const std::string& bootstrap = kafka_flags.bootstrap;
  if (!kafka_properties) {
    std::fprintf(stderr, "pix-admin: %s\n", option_error.c_str());
    return 2;
  }
  if (!skip_kafka) {
    std::vector<std::string> names(pix::domain::kTopicNames.begin(), pix::domain::kTopicNames.end());
    names.emplace_back(pix::saga::kDeadLetterTopic);  // poison records from the saga stages
    std::vector<pix::kafka::TopicSpec> specs;
    for (const auto& name : names) {
      pix::kafka::TopicSpec s;
      s.name = topic_prefix + name;
      s.partitions = partitions;
      s.replication_factor = replication;
      specs.push_back(std::move(s));
    }
    try {
      if (remove) {
        std::vector<std::string> doomed;
        for (const auto& spec : specs) doomed.push_back(spec.name);
        pix::kafka::delete_topics(bootstrap, doomed, std::chrono::seconds(30), *kafka_properties);
        for (const auto& t : doomed) std::printf("kafka    topic     %-24s deleted\n", t.c_str());
        specs.clear();
      }
      for (const auto& o :
           specs.empty() ? std::vector<pix::kafka::TopicOutcome>{}
                         : pix::kafka::create_topics(bootstrap, specs, std::chrono::seconds(30), *kafka_properties)) {
        std::printf("kafka    topic     %-24s %s\n", o.name.c_str(), o.status.c_str());
        if (!o.ok) ++failures;
      }
      if (acls && !remove) {
        const auto rules = pix::kafka::pix_acls(topic_prefix, pix::saga::kDeadLetterTopic);
        for (const auto& o : pix::kafka::create_acls(bootstrap, rules, std::chrono::seconds(30), *kafka_properties)) {
          std::printf("kafka    acl       %-60s %s\n", o.rule.describe().c_str(), o.status.c_str());
          if (!o.ok) ++failures;
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kafka: %s\n", e.what());
      ++failures;
    }
  }
  if (!skip_rabbit) {
    auto url = pix::amqp::resolve_url(rabbit_flags);
    if (!url) {
      std::fprintf(stderr, "pix-admin: %s\n", url.error.c_str());
      return 2;
    }
    pix::amqp::TopologyOptions opts;
    opts.exchange = exchange;
    opts.queue_prefix = queue_prefix;
    if (remove) {
      if (auto r = pix::amqp::delete_topology(*url.url, opts); !r) {
        std::fprintf(stderr, "rabbitmq: %s\n", r.error.c_str());
        ++failures;
      } else {
        std::printf("rabbitmq exchange  %-24s deleted, with its queues\n", exchange.c_str());
      }
    } else if (auto r = pix::amqp::declare_topology(*url.url, opts); !r) {
      std::fprintf(stderr, "rabbitmq: %s\n", r.error.c_str());
      ++failures;
    } else {
      const auto names = pix::amqp::topology_names(opts);
      std::printf("rabbitmq exchange  %-24s topic, durable, alternate-exchange %s\n", names.exchange.c_str(),
                  names.unrouted.c_str());
      for (const auto& q : names.queues) std::printf("rabbitmq queue     %-24s quorum, bound by its name\n", q.c_str());
      std::printf("rabbitmq queue     %-24s quorum, catches unrouted keys\n", names.unrouted.c_str());
      std::printf("rabbitmq queue     %-24s quorum, dead letters via %s\n", names.dead_letter_queue.c_str(),
                  names.dead_letter_exchange.c_str());
    }
  }
  return failures == 0 ? 0 : 1;
}
