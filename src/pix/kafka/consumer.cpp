#include "pix/kafka/consumer.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>

#include <stdexcept>

namespace pix::kafka {
namespace {

void rebalance_trampoline(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
  static_cast<KafkaConsumer*>(opaque)->on_rebalance(err, parts);
}

int stats_trampoline(rd_kafka_t*, char* json, size_t len, void* opaque) {
  static_cast<KafkaConsumer*>(opaque)->on_stats(json, len);
  return 0;  // librdkafka frees the buffer
}

void log_trampoline(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  if (level <= 4) {
    spdlog::warn("librdkafka {}: {}", fac, buf);
  } else {
    spdlog::debug("librdkafka {}: {}", fac, buf);
  }
}

const std::string kEmpty;

}  // namespace

const std::string& ConsumedRecord::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? kEmpty : it->second;
}

ConsumedRecord copy_record(const rd_kafka_message_t* m) {
  ConsumedRecord r;
  r.topic = rd_kafka_topic_name(m->rkt);
  r.partition = m->partition;
  r.offset = m->offset;
  if (m->key) r.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload) r.value.assign(static_cast<const char*>(m->payload), m->len);
  r.timestamp_ms = rd_kafka_message_timestamp(m, nullptr);
  rd_kafka_headers_t* hdrs = nullptr;
  // rd_kafka_message_headers() takes a non-const message only to cache the parsed headers.
  if (rd_kafka_message_headers(const_cast<rd_kafka_message_t*>(m), &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* val;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      r.headers[name] = val ? std::string(static_cast<const char*>(val), size) : std::string();
    }
  }
  return r;
}

KafkaConsumer::KafkaConsumer(ConsumerOptions options) : options_(std::move(options)) {
  if (options_.group_id.empty()) throw std::invalid_argument("a consumer needs a group id");
  if (options_.topics.empty()) throw std::invalid_argument("a consumer needs at least one topic");
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::invalid_argument("kafka option " + k + ": " + err);
    }
  };
  set("bootstrap.servers", options_.bootstrap_servers);
  set("group.id", options_.group_id);
  set("client.id", options_.client_id);
  set("enable.auto.commit", "false");
  set("enable.auto.offset.store", "false");
  set("auto.offset.reset", options_.auto_offset_reset);
  set("enable.partition.eof", "false");
  set("reconnect.backoff.max.ms", "1000");
  set("session.timeout.ms", std::to_string(options_.session_timeout.count()));
  set("heartbeat.interval.ms", std::to_string(std::max<long>(1000, options_.session_timeout.count() / 4)));
  if (!options_.instance_id.empty()) set("group.instance.id", options_.instance_id);
  if (options_.statistics_interval_ms > 0) {
    set("statistics.interval.ms", std::to_string(options_.statistics_interval_ms));
    rd_kafka_conf_set_stats_cb(conf, stats_trampoline);
  }
  for (const auto& [k, v] : options_.extra) set(k, v);
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_rebalance_cb(conf, rebalance_trampoline);
  rd_kafka_conf_set_log_cb(conf, log_trampoline);

  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("cannot create Kafka consumer: ") + err);
  }
  rd_kafka_poll_set_consumer(rk_);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size()));
  for (const auto& t : options_.topics) rd_kafka_topic_partition_list_add(topics, t.c_str(), RD_KAFKA_PARTITION_UA);
  const auto rc = rd_kafka_subscribe(rk_, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (rc) {
    rd_kafka_destroy(rk_);
    throw std::runtime_error(std::string("cannot subscribe: ") + rd_kafka_err2str(rc));
  }
}

KafkaConsumer::~KafkaConsumer() {
  commit(true);
  rd_kafka_consumer_close(rk_);
  rd_kafka_destroy(rk_);
}

std::optional<ConsumedRecord> KafkaConsumer::poll(std::chrono::milliseconds timeout) {
  rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, static_cast<int>(timeout.count()));
  if (!m) return std::nullopt;
  if (m->err) {
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      spdlog::warn("kafka consume error: {}", rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
    return std::nullopt;
  }
  ConsumedRecord r = copy_record(m);
  rd_kafka_message_destroy(m);
  auto& p = progress_[{r.topic, r.partition}];
  if (p.next_to_commit < 0) p.next_to_commit = r.offset;
  p.seen.emplace(r.offset, false);
  return r;
}

void KafkaConsumer::mark_done(const std::string& topic, std::int32_t partition, std::int64_t offset) {
  auto it = progress_.find({topic, partition});
  if (it == progress_.end()) return;  // revoked meanwhile: the next owner re-reads it
  if (auto s = it->second.seen.find(offset); s != it->second.seen.end()) s->second = true;
}

void KafkaConsumer::commit(bool sync) {
  rd_kafka_topic_partition_list_t* list = nullptr;
  for (auto& [tp, p] : progress_) {
    std::int64_t next = -1;
    while (!p.seen.empty() && p.seen.begin()->second) {
      next = p.seen.begin()->first + 1;
      p.seen.erase(p.seen.begin());
    }
    if (next < 0) continue;
    p.next_to_commit = next;
    if (!list) list = rd_kafka_topic_partition_list_new(static_cast<int>(progress_.size()));
    rd_kafka_topic_partition_list_add(list, tp.first.c_str(), tp.second)->offset = next;
  }
  if (!list) return;
  const auto err = rd_kafka_commit(rk_, list, sync ? 0 : 1);
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) spdlog::warn("kafka commit failed: {}", rd_kafka_err2str(err));
  rd_kafka_topic_partition_list_destroy(list);
}

void KafkaConsumer::on_rebalance(int err, void* partitions) {
  auto* parts = static_cast<rd_kafka_topic_partition_list_t*>(partitions);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    spdlog::info("kafka group {}: assigned {} partition(s)", options_.group_id, parts->cnt);
    rd_kafka_assign(rk_, parts);
    assigned_ = parts->cnt > 0;
  } else {
    if (options_.before_revoke) {
      std::vector<std::pair<std::string, std::int32_t>> revoked;
      for (int i = 0; i < parts->cnt; ++i) revoked.emplace_back(parts->elems[i].topic, parts->elems[i].partition);
      options_.before_revoke(revoked);
    }
    // Commit what is finished before the partitions go to another member.
    commit(true);
    spdlog::info("kafka group {}: revoked {} partition(s)", options_.group_id, parts->cnt);
    for (int i = 0; i < parts->cnt; ++i) progress_.erase({parts->elems[i].topic, parts->elems[i].partition});
    rd_kafka_assign(rk_, nullptr);
    assigned_ = false;
  }
}

void KafkaConsumer::on_stats(const char* json, std::size_t len) {
  boost::json::error_code ec;
  auto doc = boost::json::parse(std::string_view(json, len), ec);
  if (ec || !doc.is_object()) return;
  const auto* topics = doc.as_object().if_contains("topics");
  if (!topics || !topics->is_object()) return;
  std::int64_t total = 0;
  bool any = false;
  for (const auto& [name, topic] : topics->as_object()) {
    const auto* parts = topic.is_object() ? topic.as_object().if_contains("partitions") : nullptr;
    if (!parts || !parts->is_object()) continue;
    for (const auto& [id, part] : parts->as_object()) {
      if (id == "-1" || !part.is_object()) continue;
      const auto* lag = part.as_object().if_contains("consumer_lag");
      if (lag && lag->is_int64() && lag->as_int64() >= 0) {
        total += lag->as_int64();
        any = true;
      }
    }
  }
  lag_ = any ? total : -1;
}

}  // namespace pix::kafka
