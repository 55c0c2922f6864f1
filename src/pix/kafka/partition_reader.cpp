#include "pix/kafka/partition_reader.hpp"

#include <librdkafka/rdkafka.h>

#include <memory>
#include <stdexcept>

#include "pix/kafka/handles.hpp"

namespace pix::kafka {
namespace {

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

struct PartitionReader::Client {
  detail::ClientHandle rk;
  ~Client() {
    if (rk) rd_kafka_assign(rk.get(), nullptr);
  }
};

PartitionReader::PartitionReader(ReaderOptions options)
    : options_(std::move(options)), client_(std::make_unique<Client>()) {
  auto conf = detail::new_conf();
  const auto set = [c = conf.get()](const std::string& k, const std::string& v) { detail::set_option(c, k, v); };
  set("bootstrap.servers", options_.bootstrap_servers);
  set("client.id", options_.client_id);
  // librdkafka wants a group id for assign(); this one is never joined and nothing is committed.
  set("group.id", options_.client_id + "-reader");
  set("enable.auto.commit", "false");
  set("enable.auto.offset.store", "false");
  set("enable.partition.eof", "true");
  set("reconnect.backoff.max.ms", "1000");
  detail::set_options(conf.get(), options_.extra);
  client_->rk = detail::new_client(RD_KAFKA_CONSUMER, std::move(conf), "reader");
}

PartitionReader::~PartitionReader() = default;

std::int32_t PartitionReader::partition_count(const std::string& topic) {
  detail::MetadataHandle md;
  {
    const detail::TopicHandle rkt(rd_kafka_topic_new(client_->rk.get(), topic.c_str(), nullptr));
    if (const auto err = detail::fetch_metadata(client_->rk.get(), rkt.get(), timeout_ms(options_), md)) {
      fail("describe", topic, -1, err);
    }
  }
  std::int32_t count = -1;
  rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic == md->topics[i].topic) {
      topic_err = md->topics[i].err;
      count = md->topics[i].partition_cnt;
    }
  }
  if (topic_err || count <= 0) fail("describe", topic, -1, topic_err ? topic_err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC);
  return count;
}

Watermarks PartitionReader::watermarks(const std::string& topic, std::int32_t partition) {
  Watermarks w;
  const auto err = rd_kafka_query_watermark_offsets(client_->rk.get(), topic.c_str(), partition, &w.low, &w.high,
                                                    timeout_ms(options_));
  if (err) fail("read the watermarks of", topic, partition, err);
  return w;
}

std::int64_t PartitionReader::offset_for_time(const std::string& topic, std::int32_t partition, std::int64_t epoch_ms) {
  const detail::PartitionListHandle list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = epoch_ms;
  auto err = rd_kafka_offsets_for_times(client_->rk.get(), list.get(), timeout_ms(options_));
  if (!err) err = list->elems[0].err;
  if (err) fail("look up a time in", topic, partition, err);
  const std::int64_t offset = list->elems[0].offset;
  // -1: no record at or after that time.
  return offset >= 0 ? offset : watermarks(topic, partition).high;
}

std::size_t PartitionReader::read(const std::string& topic, std::int32_t partition, std::int64_t from,
                                  std::int64_t until, const std::function<void(const ConsumedRecord&)>& fn) {
  if (from >= until) return 0;
  rd_kafka_t* rk = client_->rk.get();
  const detail::PartitionListHandle list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = from;
  if (const auto err = rd_kafka_assign(rk, list.get())) fail("read", topic, partition, err);
  // However the read ends (done, timed out, refused, `fn` threw), the partition is let go.
  struct Unassign {
    rd_kafka_t* rk;
    ~Unassign() { rd_kafka_assign(rk, nullptr); }
  } unassign{rk};
  std::size_t count = 0;
  std::int64_t next = from;
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  std::string last_error = "no record arrived";
  while (next < until) {
    if (std::chrono::steady_clock::now() >= deadline) {
      throw std::runtime_error("kafka: reading " + where(topic, partition) + " stopped at offset " +
                               std::to_string(next) + " of " + std::to_string(until) + ": " + last_error);
    }
    const detail::MessageHandle m(rd_kafka_consumer_poll(rk, 200));
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      // The end came sooner than `until` said (a compacted or truncated tail): nothing more to read.
      next = until;
    } else if (m->err) {
      last_error = rd_kafka_message_errstr(m.get());
      const bool fatal = m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                         m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                         m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
      if (fatal) fail("read", topic, partition, m->err);
    } else if (m->offset >= next) {
      next = m->offset + 1;
      if (m->offset < until) {
        fn(copy_record(m.get()));
        ++count;
      }
    }
  }
  return count;
}

std::size_t PartitionReader::read_since(const std::string& topic, std::int32_t partition, std::int64_t epoch_ms,
                                        const std::function<void(const ConsumedRecord&)>& fn) {
  const auto end = watermarks(topic, partition).high;
  return read(topic, partition, offset_for_time(topic, partition, epoch_ms), end, fn);
}

}  // namespace pix::kafka
