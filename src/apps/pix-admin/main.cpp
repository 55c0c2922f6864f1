// pix-admin: declares the Kafka topics and the RabbitMQ topology, idempotently.
#include "pix/util/cli.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "pix/amqp/client_flags.hpp"
#include "pix/amqp/topology.hpp"
#include "pix/amqp/url.hpp"
#include "pix/audit/audit_anchor.hpp"
#include "pix/domain/topics.hpp"
#include "pix/kafka/acls.hpp"
#include "pix/kafka/admin.hpp"
#include "pix/kafka/client_flags.hpp"
#include "pix/kafka/partition_reader.hpp"
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

/// @brief Where verify-audit reads the chain's anchor from: the cluster and the topic.
struct AnchorSource {
  std::string bootstrap;
  std::map<std::string, std::string> properties;  ///< client_properties() of the Kafka flags
  std::string topic;                              ///< <prefix>pix.audit.log
};

/// The anchor announced on `source.topic`: of the last record of each partition, the one with the
/// highest seq (records that announce nothing are skipped). Nullopt when nothing is announced.
/// Throws std::runtime_error naming the topic when it cannot be read (unreachable, not
/// authorized, no such topic): "could not read" must never pass for "nothing announced".
std::optional<pix::audit::AuditAnchor> read_anchor(const AnchorSource& source) {
  pix::kafka::ReaderOptions options;
  options.bootstrap_servers = source.bootstrap;
  options.client_id = "pix-admin";
  options.extra = source.properties;
  pix::kafka::PartitionReader reader(std::move(options));
  std::optional<pix::audit::AuditAnchor> best;
  const std::int32_t partitions = reader.partition_count(source.topic);
  for (std::int32_t p = 0; p < partitions; ++p) {
    const pix::kafka::Watermarks w = reader.watermarks(source.topic, p);
    if (w.high <= w.low) continue;  // empty, or retention dropped everything
    reader.read(source.topic, p, w.high - 1, w.high, [&](const pix::kafka::ConsumedRecord& r) {
      auto anchor = pix::audit::parse_anchor(r.value);
      if (!anchor) return;
      anchor->origin =
          source.topic + " (partition " + std::to_string(r.partition) + ", offset " + std::to_string(r.offset) + ")";
      if (!best || anchor->seq > best->seq) best = std::move(anchor);
    });
  }
  return best;
}

/// verify-audit: walks the chain and, given `anchor_source`, checks its tail against what the
/// auditor announced. Returns 0 (intact), 1 (the anchor could not be read) or 3 (broken,
/// truncated or rewritten); a store that cannot be opened throws.
int verify_audit(const std::string& audit_db, const std::optional<AnchorSource>& anchor_source) {
  // The anchor before the store: the auditor appends an entry before it announces it, so the
  // store read afterwards holds every entry announced so far, even while the auditor runs.
  std::optional<pix::audit::AuditAnchor> anchor;
  if (anchor_source) {
    try {
      anchor = read_anchor(*anchor_source);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pix-admin: cannot read the audit chain's anchor on %s, the tail is unchecked: %s\n",
                   anchor_source->topic.c_str(), e.what());
      return 1;
    }
  }
  pix::audit::AuditStore store(audit_db);
  const auto r = store.verify([](std::size_t done) { std::fprintf(stderr, "  ... %zu entries verified\n", done); });
  if (!r.ok) {
    std::printf("audit chain BROKEN at seq %lld: %s (%zu entries before it are intact)\n",
                static_cast<long long>(r.first_broken_seq.value_or(-1)), r.reason.c_str(), r.entries);
    return 3;
  }
  if (!anchor_source) {
    std::printf("audit chain OK: %zu entries\n", r.entries);
    return 0;
  }
  const pix::audit::AnchorVerdict v = pix::audit::check_anchor(store, anchor);
  switch (v.status) {
    case pix::audit::AnchorStatus::kNoAnchor:
      std::printf("audit chain OK: %zu entries; no anchor yet: %s announces no entry (checked as a file only)\n",
                  r.entries, anchor_source->topic.c_str());
      return 0;
    case pix::audit::AnchorStatus::kReached:
      std::printf("audit chain OK: %zu entries, anchored: %s\n", r.entries, v.detail.c_str());
      return 0;
    case pix::audit::AnchorStatus::kTruncated:
      std::printf("audit chain TRUNCATED: %s (its %zu entries are intact)\n", v.detail.c_str(), r.entries);
      return 3;
    case pix::audit::AnchorStatus::kDiverged:
      std::printf("audit chain REWRITTEN: %s\n", v.detail.c_str());
      return 3;
  }
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pix-admin: declares the PIX topology on Kafka and RabbitMQ (safe to run again)"};
  app.require_subcommand(1);

  pix::kafka::ClientFlags kafka_flags;
  std::string topic_prefix;
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
  auto* verify = app.add_subcommand("verify-audit",
                                    "re-walk the audit hash chain; report the first broken link (and, with "
                                    "--anchor-kafka, a tail cut off)");
  verify->add_option("--audit-db", audit_db, "the auditor's store")->envname("PIX_AUDIT_DB")->capture_default_str();
  bool anchor_kafka = false;
  verify->add_flag("--anchor-kafka", anchor_kafka,
                   "also check the chain's tail against the entries the auditor announced on pix.audit.log "
                   "(exit 3 if cut off or rewritten, 1 if the topic cannot be read)");
  pix::kafka::add_client_flags(*verify, kafka_flags);
  pix::util::add_topic_prefix_option(*verify, topic_prefix);

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
      std::optional<AnchorSource> anchor_source;
      if (anchor_kafka) {
        std::string option_error;
        auto properties = pix::kafka::client_properties(kafka_flags, option_error);
        if (!properties) {
          std::fprintf(stderr, "pix-admin: %s\n", option_error.c_str());
          return 2;
        }
        anchor_source =
            AnchorSource{kafka_flags.bootstrap, std::move(*properties),
                         topic_prefix + std::string(pix::domain::topic_name(pix::domain::Topic::kAuditLog))};
      }
      return verify_audit(audit_db, anchor_source);
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
