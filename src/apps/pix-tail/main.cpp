// pix-tail: the seed's two consumers. `pix-tail kafka` follows a consumer group on Kafka topics;
// `pix-tail rabbit` binds an exclusive queue to the PIX routing keys. One line per event.
#include <spdlog/spdlog.h>
#include "pix/util/cli.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>

#include "pix/amqp/client_flags.hpp"
#include "pix/amqp/consumer.hpp"
#include "pix/domain/topics.hpp"
#include "pix/kafka/client_flags.hpp"
#include "pix/kafka/consumer.hpp"
#include "pix/saga/event_line.hpp"
#include "pix/telemetry/logging.hpp"

namespace {

std::atomic<bool> g_stop{false};

void print(const pix::saga::EventView& e, bool json) {
  const std::string line = json ? pix::saga::json_line(e) : pix::saga::readable_line(e);
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pix-tail: print PIX events as they arrive (Ctrl-C to stop)"};
  app.require_subcommand(1);
  bool json = false;
  long max_events = 0;
  app.add_flag("--json", json, "one JSON object per line instead of readable lines");
  app.add_option("--max", max_events, "stop after this many events (0: never)");

  std::string group = "pix-group", reset = "earliest";
  std::vector<std::string> topics{"pix.payment.requested"};
  auto* kafka = app.add_subcommand("kafka", "consume Kafka topics in a consumer group, committing what was printed");
  pix::kafka::ClientFlags kafka_flags;
  pix::kafka::add_client_flags(*kafka, kafka_flags);
  kafka->add_option("--group", group, "consumer group")->capture_default_str();
  kafka->add_option("--topics", topics, "topics (space or comma separated; 'all' for the five)")
      ->delimiter(',')
      ->capture_default_str();
  kafka->add_option("--from", reset, "where a new group starts: earliest or latest")
      ->check(CLI::IsMember({"earliest", "latest"}))
      ->capture_default_str();

  pix::amqp::ClientFlags rabbit_flags;
  std::string exchange = "pix";
  auto* rabbit = app.add_subcommand("rabbit", "exclusive queue bound to the five PIX routing keys of the exchange");
  pix::amqp::add_client_flags(*rabbit, rabbit_flags);
  rabbit->add_option("--exchange", exchange, "exchange")->envname("PIX_EXCHANGE")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  pix::telemetry::setup_logging("pix-tail", "warn", "text");
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });

  long printed = 0;
  auto done = [&] { return g_stop.load() || (max_events > 0 && printed >= max_events); };
  try {
    if (*kafka) {
      if (topics.size() == 1 && topics[0] == "all") {
        topics.assign(pix::domain::kTopicNames.begin(), pix::domain::kTopicNames.end());
      }
      std::string option_error;
      auto properties = pix::kafka::client_properties(kafka_flags, option_error);
      if (!properties) {
        std::fprintf(stderr, "pix-tail: %s\n", option_error.c_str());
        return 2;
      }
      pix::kafka::ConsumerOptions o;
      o.bootstrap_servers = kafka_flags.bootstrap;
      o.extra = std::move(*properties);
      o.group_id = group;
      o.topics = topics;
      o.client_id = "pix-tail";
      o.auto_offset_reset = reset;
      o.statistics_interval_ms = 0;
      pix::kafka::KafkaConsumer consumer(o);
      std::fprintf(stderr, "following %zu topic(s) as group %s on %s; Ctrl-C to stop\n", topics.size(), group.c_str(),
                   pix::kafka::describe(kafka_flags).c_str());
      while (!done()) {
        auto rec = consumer.poll(std::chrono::milliseconds(200));
        if (!rec) continue;
        print({rec->timestamp_ms, rec->topic, "p" + std::to_string(rec->partition) + "@" + std::to_string(rec->offset),
               rec->header("ce_id"), rec->value},
              json);
        ++printed;
        consumer.mark_done(rec->topic, rec->partition, rec->offset);
        consumer.commit();
      }
      consumer.commit(true);
    } else {
      auto url = pix::amqp::resolve_url(rabbit_flags);
      if (!url) {
        std::fprintf(stderr, "pix-tail: %s\n", url.error.c_str());
        return 2;
      }
      pix::amqp::ConsumerOptions o;
      o.url = *url.url;
      o.exchange = exchange;
      o.bindings.assign(pix::domain::kTopicNames.begin(), pix::domain::kTopicNames.end());
      o.connection_name = "pix-tail";
      pix::amqp::AmqpConsumer consumer(o);
      std::fprintf(stderr, "following exchange %s (all five routing keys) on %s; Ctrl-C to stop\n", exchange.c_str(),
                   url.url->redacted().c_str());
      while (!done()) {
        auto d = consumer.next(std::chrono::milliseconds(200));
        if (!d) continue;
        const auto time_ms = static_cast<std::int64_t>(d->timestamp) * 1000;
        print({time_ms, d->routing_key, "tag " + std::to_string(d->tag), d->message_id, d->body}, json);
        ++printed;
        consumer.ack(*d);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pix-tail: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "printed %ld event(s)\n", printed);
  return 0;
}
