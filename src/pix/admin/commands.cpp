#include "pix/admin/commands.hpp"

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "pix/amqp/topology.hpp"
#include "pix/domain/topics.hpp"
#include "pix/kafka/acls.hpp"
#include "pix/kafka/admin.hpp"
#include "pix/saga/handlers.hpp"

namespace pix::admin {
namespace {

constexpr std::chrono::seconds kAdminTimeout{30};

/// The topics (and with --kafka-acls the ACLs); returns the number of parts that failed.
int kafka_topology(const TopologyConfig& c) {
  std::vector<std::string> names(domain::kTopicNames.begin(), domain::kTopicNames.end());
  names.emplace_back(saga::kDeadLetterTopic);  // poison records from the saga stages
  int failures = 0;
  try {
    if (c.remove) {
      std::vector<std::string> doomed;
      doomed.reserve(names.size());
      for (const auto& name : names) doomed.push_back(c.topic_prefix + name);
      kafka::delete_topics(c.kafka.bootstrap, doomed, kAdminTimeout, c.kafka.properties);
      for (const auto& t : doomed) std::printf("kafka    topic     %-24s deleted\n", t.c_str());
      return 0;
    }
    std::vector<kafka::TopicSpec> specs;
    for (const auto& name : names) {
      kafka::TopicSpec s;
      s.name = c.topic_prefix + name;
      s.partitions = c.partitions;
      s.replication_factor = c.replication_factor;
      specs.push_back(std::move(s));
    }
    for (const auto& o : kafka::create_topics(c.kafka.bootstrap, specs, kAdminTimeout, c.kafka.properties)) {
      std::printf("kafka    topic     %-24s %s\n", o.name.c_str(), o.status.c_str());
      if (!o.ok) ++failures;
    }
    if (c.kafka_acls) {
      const auto rules = kafka::pix_acls(c.topic_prefix, saga::kDeadLetterTopic);
      for (const auto& o : kafka::create_acls(c.kafka.bootstrap, rules, kAdminTimeout, c.kafka.properties)) {
        std::printf("kafka    acl       %-60s %s\n", o.rule.describe().c_str(), o.status.c_str());
        if (!o.ok) ++failures;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kafka: %s\n", e.what());
    ++failures;
  }
  return failures;
}

/// The exchange and its queues; returns 1 when it failed.
int rabbit_topology(const TopologyConfig& c) {
  const auto& opts = c.rabbit_topology;
  if (c.remove) {
    if (auto r = amqp::delete_topology(*c.rabbit, opts); !r) {
      std::fprintf(stderr, "rabbitmq: %s\n", r.error.c_str());
      return 1;
    }
    std::printf("rabbitmq exchange  %-24s deleted, with its queues\n", opts.exchange.c_str());
    return 0;
  }
  if (auto r = amqp::declare_topology(*c.rabbit, opts); !r) {
    std::fprintf(stderr, "rabbitmq: %s\n", r.error.c_str());
    return 1;
  }
  const auto names = amqp::topology_names(opts);
  std::printf("rabbitmq exchange  %-24s topic, durable, alternate-exchange %s\n", names.exchange.c_str(),
              names.unrouted.c_str());
  for (const auto& q : names.queues) std::printf("rabbitmq queue     %-24s quorum, bound by its name\n", q.c_str());
  std::printf("rabbitmq queue     %-24s quorum, catches unrouted keys\n", names.unrouted.c_str());
  std::printf("rabbitmq queue     %-24s quorum, dead letters via %s\n", names.dead_letter_queue.c_str(),
              names.dead_letter_exchange.c_str());
  return 0;
}

}  // namespace

int run_topology(const TopologyConfig& config) {
  int failures = 0;
  if (!config.skip_kafka) failures += kafka_topology(config);
  if (!config.skip_rabbit) failures += rabbit_topology(config);
  return failures == 0 ? 0 : 1;
}

int run(const AdminConfig& config) {
  switch (config.command) {
    case Command::kTopology:
      return run_topology(config.topology);  // reports its own failures part by part
    case Command::kTrace:
      return run_trace(config.trace);  // exit 2 for Jaeger's failures, its own
    default:
      break;
  }
  try {
    switch (config.command) {
      case Command::kReport:
        return run_report(config.report);
      case Command::kVerifyAudit:
        return run_verify_audit(config.verify_audit);
      case Command::kDecisionKey:
        return run_decision_key(config.decision_key);
      default:
        break;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pix-admin: %s\n", e.what());
    return 1;
  }
  return 1;
}

}  // namespace pix::admin
