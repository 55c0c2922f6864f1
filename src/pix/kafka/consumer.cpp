#include "pix/kafka/consumer.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>

#include <atomic>
#include <stdexcept>

#include "pix/broker/guarded_callback.hpp"
#include "pix/kafka/handles.hpp"
#include "pix/util/invariant.hpp"

namespace pix::kafka {
namespace {

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
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* val;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      r.headers[name] = val ? std::string(static_cast<const char*>(val), size) : std::string();
    }
  }
  return r;
}

class KafkaConsumer::Impl {
 public:
  explicit Impl(ConsumerOptions options);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  std::optional<ConsumedRecord> poll(std::chrono::milliseconds timeout);
  void mark_done(const std::string& topic, std::int32_t partition, std::int64_t offset);
  void commit(bool sync);
  std::int64_t lag() const noexcept { return lag_.load(std::memory_order_relaxed); }
  bool assigned() const noexcept { return assigned_.load(std::memory_order_relaxed); }

 private:
  struct PartitionProgress {
    std::int64_t next_to_commit = -1;   // first offset not yet committed (-1: unknown)
    std::map<std::int64_t, bool> seen;  // offset -> done, for records polled and not yet committed
  };

  // librdkafka's callbacks (the opaque is the Impl), served inside poll(): nothing may throw
  // through them.
  static void rebalance_callback(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                                 void* opaque) {
    broker::guarded("kafka rebalance callback", [&] { static_cast<Impl*>(opaque)->on_rebalance(err, parts); });
  }
  static int stats_callback(rd_kafka_t*, char* json, size_t len, void* opaque) {
    broker::guarded("kafka statistics callback", [&] { static_cast<Impl*>(opaque)->on_stats(json, len); });
    return 0;  // librdkafka frees the buffer
  }

  void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
  void on_stats(const char* json, std::size_t len);

  ConsumerOptions options_;
  detail::ClientHandle rk_;
  std::map<std::pair<std::string, std::int32_t>, PartitionProgress> progress_;
  std::atomic<std::int64_t> lag_{-1};  // read by the metrics thread
  std::atomic<bool> assigned_{false};
};

KafkaConsumer::Impl::Impl(ConsumerOptions options) : options_(std::move(options)) {
  if (options_.group_id.empty()) throw std::invalid_argument("a consumer needs a group id");
  if (options_.topics.empty()) throw std::invalid_argument("a consumer needs at least one topic");
  auto conf = detail::new_conf();
  const auto set = [c = conf.get()](const std::string& k, const std::string& v) { detail::set_option(c, k, v); };
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
    rd_kafka_conf_set_stats_cb(conf.get(), &Impl::stats_callback);
  }
  detail::set_options(conf.get(), options_.extra);
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_rebalance_cb(conf.get(), &Impl::rebalance_callback);
  rd_kafka_conf_set_log_cb(conf.get(), &detail::log_to_spdlog);

  rk_ = detail::new_client(RD_KAFKA_CONSUMER, std::move(conf), "consumer");
  rd_kafka_poll_set_consumer(rk_.get());
  detail::PartitionListHandle topics(rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size())));
  for (const auto& t : options_.topics)
    rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  if (const auto rc = rd_kafka_subscribe(rk_.get(), topics.get())) {
    throw std::runtime_error(std::string("cannot subscribe: ") + rd_kafka_err2str(rc));
  }
}

KafkaConsumer::Impl::~Impl() {
  commit(true);
  rd_kafka_consumer_close(rk_.get());
}

std::optional<ConsumedRecord> KafkaConsumer::Impl::poll(std::chrono::milliseconds timeout) {
  const detail::MessageHandle m(rd_kafka_consumer_poll(rk_.get(), static_cast<int>(timeout.count())));
  if (!m) return std::nullopt;
  if (m->err) {
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      spdlog::warn("kafka consume error: {}", rd_kafka_message_errstr(m.get()));
    }
    return std::nullopt;
  }
  ConsumedRecord r = copy_record(m.get());
  auto& p = progress_[{r.topic, r.partition}];
  if (p.next_to_commit < 0) p.next_to_commit = r.offset;
  p.seen.emplace(r.offset, false);
  return r;
}

void KafkaConsumer::Impl::mark_done(const std::string& topic, std::int32_t partition, std::int64_t offset) {
  auto it = progress_.find({topic, partition});
  if (it == progress_.end()) return;  // revoked meanwhile: the next owner re-reads it
  if (auto s = it->second.seen.find(offset); s != it->second.seen.end()) s->second = true;
}

void KafkaConsumer::Impl::commit(bool sync) {
  detail::PartitionListHandle list;
  for (auto& [tp, p] : progress_) {
    std::int64_t next = -1;
    while (!p.seen.empty() && p.seen.begin()->second) {
      next = p.seen.begin()->first + 1;
      p.seen.erase(p.seen.begin());
    }
    if (next < 0) continue;
    p.next_to_commit = next;
    if (!list) list.reset(rd_kafka_topic_partition_list_new(static_cast<int>(progress_.size())));
    rd_kafka_topic_partition_list_add(list.get(), tp.first.c_str(), tp.second)->offset = next;
  }
  if (!list) return;
  const auto err = rd_kafka_commit(rk_.get(), list.get(), sync ? 0 : 1);
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) spdlog::warn("kafka commit failed: {}", rd_kafka_err2str(err));
}

void KafkaConsumer::Impl::on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    spdlog::info("kafka group {}: assigned {} partition(s)", options_.group_id, parts->cnt);
    // The eager protocol this consumer is configured for always takes a full assignment; a refusal
    // (a cooperative assignor passed in `extra`, say) would leave the group thinking we consume.
    const auto assign_err = rd_kafka_assign(rk_.get(), parts);
    PIX_BUG(assign_err == RD_KAFKA_RESP_ERR_NO_ERROR, "kafka group {}: assigning {} partition(s) failed: {}",
            options_.group_id, parts->cnt, rd_kafka_err2str(assign_err));
    assigned_ = parts->cnt > 0;
  } else {
    if (options_.before_revoke) {
      std::vector<std::pair<std::string, std::int32_t>> revoked;
      revoked.reserve(static_cast<std::size_t>(parts->cnt));
      for (int i = 0; i < parts->cnt; ++i) revoked.emplace_back(parts->elems[i].topic, parts->elems[i].partition);
      // Guarded on its own, so that a hook that throws still leaves the commit and unassign below.
      broker::guarded("kafka before_revoke hook", [&] { options_.before_revoke(revoked); });
    }
    // Commit what is finished before the partitions go to another member.
    commit(true);
    spdlog::info("kafka group {}: revoked {} partition(s)", options_.group_id, parts->cnt);
    for (int i = 0; i < parts->cnt; ++i) progress_.erase({parts->elems[i].topic, parts->elems[i].partition});
    rd_kafka_assign(rk_.get(), nullptr);
    assigned_ = false;
  }
}

void KafkaConsumer::Impl::on_stats(const char* json, std::size_t len) {
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

KafkaConsumer::KafkaConsumer(ConsumerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

KafkaConsumer::~KafkaConsumer() = default;

std::optional<ConsumedRecord> KafkaConsumer::poll(std::chrono::milliseconds timeout) {
  return impl_->poll(timeout);
}

void KafkaConsumer::mark_done(const std::string& topic, std::int32_t partition, std::int64_t offset) {
  impl_->mark_done(topic, partition, offset);
}

void KafkaConsumer::commit(bool sync) {
  impl_->commit(sync);
}

std::int64_t KafkaConsumer::lag() const noexcept {
  return impl_->lag();
}

bool KafkaConsumer::assigned() const noexcept {
  return impl_->assigned();
}

}  // namespace pix::kafka
