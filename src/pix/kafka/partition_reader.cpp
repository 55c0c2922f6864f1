#include "pix/kafka/partition_reader.hpp"

#include <librdkafka/rdkafka.h>

#include <memory>
#include <stdexcept>

namespace pix::kafka {
namespace {

using PartitionList =
    std::unique_ptr<rd_kafka_topic_partition_list_t, decltype(&rd_kafka_topic_partition_list_destroy)>;

std::string where(const std::string& topic, std::int32_t partition) {
  return topic + "/" + std::to_string(partition);
}

[[noreturn]] void fail(const std::string& what, const std::string& topic, std::int32_t partition,
                       rd_kafka_resp_err_t err) {
  throw std::runtime_error("kafka: cannot " + what + " " + where(topic, partition) + ": " + rd_kafka_err2str(err));
}

int timeout_ms(const ReaderOptions& o) {
  return static_cast<int>(o.timeout.count());
}

}  // namespace

PartitionReader::PartitionReader(ReaderOptions options) : options_(std::move(options)) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::invalid_argument("kafka option " + k + ": " + err);
    }
  };
  set("bootstrap.servers", options_.bootstrap_servers);
  set("client.id", options_.client_id);
  // librdkafka wants a group id for assign(); this one is never joined and nothing is committed.
  set("group.id", options_.client_id + "-reader");
  set("enable.auto.commit", "false");
  set("enable.auto.offset.store", "false");
  set("enable.partition.eof", "true");
  set("reconnect.backoff.max.ms", "1000");
  for (const auto& [k, v] : options_.extra) set(k, v);
  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("cannot create Kafka reader: ") + err);
  }
}

PartitionReader::~PartitionReader() {
  rd_kafka_assign(rk_, nullptr);
  rd_kafka_destroy(rk_);
}

std::int32_t PartitionReader::partition_count(const std::string& topic) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  const auto err = rd_kafka_metadata(rk_, 0, rkt, &md, timeout_ms(options_));
  rd_kafka_topic_destroy(rkt);
  if (err) fail("describe", topic, -1, err);
  std::int32_t count = -1;
  rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic == md->topics[i].topic) {
      topic_err = md->topics[i].err;
      count = md->topics[i].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  if (topic_err || count <= 0) fail("describe", topic, -1, topic_err ? topic_err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC);
  return count;
}

Watermarks PartitionReader::watermarks(const std::string& topic, std::int32_t partition) {
  Watermarks w;
  const auto err =
      rd_kafka_query_watermark_offsets(rk_, topic.c_str(), partition, &w.low, &w.high, timeout_ms(options_));
  if (err) fail("read the watermarks of", topic, partition, err);
  return w;
}

std::int64_t PartitionReader::offset_for_time(const std::string& topic, std::int32_t partition, std::int64_t epoch_ms) {
  PartitionList list(rd_kafka_topic_partition_list_new(1), &rd_kafka_topic_partition_list_destroy);
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = epoch_ms;
  auto err = rd_kafka_offsets_for_times(rk_, list.get(), timeout_ms(options_));
  if (!err) err = list->elems[0].err;
  if (err) fail("look up a time in", topic, partition, err);
  const std::int64_t offset = list->elems[0].offset;
  // -1: no record at or after that time.
  return offset >= 0 ? offset : watermarks(topic, partition).high;
}

std::size_t PartitionReader::read(const std::string& topic, std::int32_t partition, std::int64_t from,
                                  std::int64_t until, const std::function<void(const ConsumedRecord&)>& fn) {
  if (from >= until) return 0;
  PartitionList list(rd_kafka_topic_partition_list_new(1), &rd_kafka_topic_partition_list_destroy);
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = from;
  if (const auto err = rd_kafka_assign(rk_, list.get())) fail("read", topic, partition, err);
  std::size_t count = 0;
  std::int64_t next = from;
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  std::string last_error = "no record arrived";
  while (next < until) {
    if (std::chrono::steady_clock::now() >= deadline) {
      rd_kafka_assign(rk_, nullptr);
      throw std::runtime_error("kafka: reading " + where(topic, partition) + " stopped at offset " +
                               std::to_string(next) + " of " + std::to_string(until) + ": " + last_error);
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 200);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      // The end came sooner than `until` said (a compacted or truncated tail): nothing more to read.
      next = until;
    } else if (m->err) {
      last_error = rd_kafka_message_errstr(m);
      const bool fatal = m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                         m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                         m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
      if (fatal) {
        const auto err = m->err;
        rd_kafka_message_destroy(m);
        rd_kafka_assign(rk_, nullptr);
        fail("read", topic, partition, err);
      }
    } else if (m->offset >= next) {
      next = m->offset + 1;
      if (m->offset < until) {
        const ConsumedRecord r = copy_record(m);
        rd_kafka_message_destroy(m);
        m = nullptr;
        fn(r);
        ++count;
      }
    }
    if (m) rd_kafka_message_destroy(m);
  }
  rd_kafka_assign(rk_, nullptr);
  return count;
}

std::size_t PartitionReader::read_since(const std::string& topic, std::int32_t partition, std::int64_t epoch_ms,
                                        const std::function<void(const ConsumedRecord&)>& fn) {
  const auto end = watermarks(topic, partition).high;
  return read(topic, partition, offset_for_time(topic, partition, epoch_ms), end, fn);
}

}  // namespace pix::kafka
