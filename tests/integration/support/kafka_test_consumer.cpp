#include "support/kafka_test_consumer.hpp"

#include <librdkafka/rdkafka.h>

#include <stdexcept>

namespace pix::test {

std::vector<KafkaRecord> read_partition(const std::string& bootstrap, const std::string& topic, std::int32_t partition,
                                        std::int64_t from, std::int64_t until, std::chrono::milliseconds timeout,
                                        const std::map<std::string, std::string>& extra) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", "pix-test-reader", err, sizeof err);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
  rd_kafka_conf_set(conf, "enable.partition.eof", "false", err, sizeof err);
  for (const auto& [k, v] : extra) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::invalid_argument(k + ": " + err);
    }
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) throw std::runtime_error(err);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), partition)->offset = from;
  rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);

  std::vector<KafkaRecord> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::int64_t next = from;
  while (next < until && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
    if (!m) continue;
    if (m->err) {
      rd_kafka_message_destroy(m);
      continue;
    }
    KafkaRecord r = kafka::copy_record(m);
    next = m->offset + 1;
    rd_kafka_message_destroy(m);
    out.push_back(std::move(r));
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return out;
}

std::optional<KafkaRecord> read_one(const std::string& bootstrap, const std::string& topic, std::int32_t partition,
                                    std::int64_t offset, std::chrono::milliseconds timeout,
                                    const std::map<std::string, std::string>& extra) {
  auto records = read_partition(bootstrap, topic, partition, offset, offset + 1, timeout, extra);
  if (records.empty()) return std::nullopt;
  return records.front();
}

}  // namespace pix::test
