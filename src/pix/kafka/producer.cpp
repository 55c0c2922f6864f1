#include "pix/kafka/producer.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

// librdkafka's RD_KAFKA_V_* varargs macros are C casts by design.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace pix::kafka {
namespace {

using broker::PublishResult;
using broker::PublishStatus;

// What each message carries through librdkafka as its opaque.
struct Pending {
  broker::PublishCallback done;
  std::chrono::steady_clock::time_point started;
  /// A retired producer may have written it: whatever the resend's fate, never "nothing stored".
  bool may_exist = false;
};

void delivery_trampoline(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque) {
  static_cast<KafkaPublisher*>(opaque)->on_delivery(rk, msg);
}

void error_trampoline(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  static_cast<KafkaPublisher*>(opaque)->on_error(rk, err, reason);
}

void log_trampoline(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  if (level <= 3) {
    spdlog::error("librdkafka {}: {}", fac, buf);
  } else if (level <= 4) {
    spdlog::warn("librdkafka {}: {}", fac, buf);
  } else {
    spdlog::debug("librdkafka {}: {}", fac, buf);
  }
}

// Classify a failed delivery. NOT_PERSISTED failures are safe to retry; anything the broker may
// have written is reported as a timeout, whose answer (504) tells the client the event may exist.
PublishResult classify(rd_kafka_resp_err_t err, rd_kafka_msg_status_t status) {
  PublishResult r;
  r.detail = rd_kafka_err2str(err);
  switch (err) {
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
      r.status = PublishStatus::kRejected;
      return r;
    default:
      break;
  }
  r.status = status == RD_KAFKA_MSG_STATUS_NOT_PERSISTED ? PublishStatus::kBrokerUnavailable : PublishStatus::kTimedOut;
  if (r.status == PublishStatus::kTimedOut) r.detail += " (the event may have been stored)";
  return r;
}

void set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    throw std::invalid_argument("kafka option " + key + ": " + err);
  }
}

}  // namespace

KafkaPublisher::KafkaPublisher(ProducerOptions options) : options_(std::move(options)) {
  producer_ = make_producer();
  poller_ = std::thread([this] { poll_loop(); });
  control_ = std::thread([this] { control_loop(); });
}

KafkaPublisher::~KafkaPublisher() {
  drain(options_.ack_timeout);
}

rd_kafka_t* KafkaPublisher::make_producer() {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", options_.bootstrap_servers);
  set(conf, "client.id", options_.client_id);
  set(conf, "enable.idempotence", "true");
  set(conf, "acks", "all");
  set(conf, "linger.ms", std::to_string(options_.linger_ms));
  set(conf, "message.timeout.ms", std::to_string(options_.ack_timeout.count()));
  // librdkafka's own queue is sized above ours, so our in-flight limit is the one that bites.
  set(conf, "queue.buffering.max.messages", std::to_string(options_.max_in_flight + 1000));
  set(conf, "reconnect.backoff.ms", "50");
  set(conf, "reconnect.backoff.max.ms", "1000");
  set(conf, "socket.keepalive.enable", "true");
  for (const auto& [k, v] : options_.extra) set(conf, k, v);
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_dr_msg_cb(conf, delivery_trampoline);
  rd_kafka_conf_set_error_cb(conf, error_trampoline);
  rd_kafka_conf_set_log_cb(conf, log_trampoline);

  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("cannot create Kafka producer: ") + err);
  }
  return rk;
}

void KafkaPublisher::publish(broker::OutboundEvent ev, broker::PublishCallback done) {
  if (draining_.load(std::memory_order_relaxed)) {
    done({PublishStatus::kShuttingDown, "the service is shutting down", -1, -1});
    return;
  }
  if (!broker_up_.load(std::memory_order_relaxed)) {
    done({PublishStatus::kBrokerUnavailable, "no Kafka broker is reachable", -1, -1});
    return;
  }
  if (in_flight_.fetch_add(1, std::memory_order_relaxed) >= options_.max_in_flight) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    done({PublishStatus::kQueueFull, "too many events waiting for the broker", -1, -1});
    return;
  }

  rd_kafka_headers_t* headers = rd_kafka_headers_new(ev.headers.size() + 1);
  for (const auto& h : ev.headers) {
    rd_kafka_header_add(headers, h.name.data(), static_cast<ssize_t>(h.name.size()), h.value.data(),
                        static_cast<ssize_t>(h.value.size()));
  }
  auto* pending = new Pending{std::move(done), std::chrono::steady_clock::now()};

  rd_kafka_resp_err_t err;
  {
    std::shared_lock lock(producer_mutex_);
    err = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(ev.topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_PARTITION(ev.partition < 0 ? RD_KAFKA_PARTITION_UA : ev.partition),
        RD_KAFKA_V_KEY(ev.key.data(), ev.key.size()), RD_KAFKA_V_VALUE(ev.payload.data(), ev.payload.size()),
        RD_KAFKA_V_TIMESTAMP(ev.timestamp_ms), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(pending), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR__FATAL && !draining_.load()) {
      // The producer is being replaced: parked (under the shared lock, so before the swap and
      // before recreate_producer() collects what is parked), and sent on the new one.
      Parked p{std::move(ev.topic),
               ev.partition,
               std::move(ev.key),
               std::move(ev.payload),
               ev.timestamp_ms,
               headers,
               pending};
      std::lock_guard parked_lock(parked_mutex_);
      parked_.push_back(std::move(p));
      return;
    }
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers);  // ownership passes to librdkafka only on success
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    PublishResult r{PublishStatus::kBrokerUnavailable, rd_kafka_err2str(err), -1, -1};
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) r.status = PublishStatus::kQueueFull;
    if (err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
      r.status = PublishStatus::kRejected;
    }
    auto cb = std::move(pending->done);
    delete pending;
    cb(std::move(r));
  }
}

void KafkaPublisher::on_delivery(rd_kafka_t* rk, const void* message) {
  const auto* msg = static_cast<const rd_kafka_message_t*>(message);
  auto* pending = static_cast<Pending*>(msg->_private);

  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR && !draining_.load() &&
      (rk != producer_ || rd_kafka_fatal_error(rk, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)) {
    // A producer with a fatal idempotence error hands back what it could not deliver (it fails
    // its queue itself, then our purge fails the rest): parked, and sent again on the new producer
    // by recreate_producer(), same key, value, headers, partition and event id.
    rd_kafka_headers_t* hdrs = nullptr;
    Parked p;
    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) p.headers = rd_kafka_headers_copy(hdrs);
    if (rd_kafka_message_status(msg) != RD_KAFKA_MSG_STATUS_NOT_PERSISTED) pending->may_exist = true;
    p.topic = rd_kafka_topic_name(msg->rkt);
    p.partition = msg->partition;
    if (msg->key) p.key.assign(static_cast<const char*>(msg->key), msg->key_len);
    if (msg->payload) p.value.assign(static_cast<const char*>(msg->payload), msg->len);
    p.timestamp_ms = rd_kafka_message_timestamp(msg, nullptr);
    p.pending = pending;
    std::lock_guard lock(parked_mutex_);
    parked_.push_back(std::move(p));
    return;
  }

  PublishResult r;
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    broker_up_.store(true, std::memory_order_relaxed);
    r.status = PublishStatus::kAcked;
    r.partition = msg->partition;
    r.offset = msg->offset;
  } else {
    r = classify(msg->err, rd_kafka_message_status(msg));
    if (pending->may_exist) {
      // The strongest status the event ever had wins: a retired producer may have written it.
      r.status = PublishStatus::kTimedOut;
      r.detail += " (resent after a fatal producer error; the first attempt may have been stored)";
    }
  }
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  auto cb = std::move(pending->done);
  delete pending;
  cb(std::move(r));
}

void KafkaPublisher::on_error(rd_kafka_t* rk, int err, const char* reason) {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    const auto real = rd_kafka_fatal_error(rk, buf, sizeof buf);
    spdlog::error("kafka producer fatal error {}: {}; recreating the producer", rd_kafka_err2name(real), buf);
    fatal_.store(true);
    control_cv_.notify_all();
    return;
  }
  if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    if (broker_up_.exchange(false)) spdlog::warn("kafka: all brokers down ({}); answering 503 until back", reason);
    control_cv_.notify_all();
    return;
  }
  spdlog::debug("kafka error {}: {}", rd_kafka_err2name(code), reason);
}

void KafkaPublisher::poll_loop() {
  while (!stopping_.load()) {
    std::shared_lock lock(producer_mutex_);
    rd_kafka_poll(producer_, 50);
  }
}

bool KafkaPublisher::metadata_round_trip(std::string& detail) {
  const struct rd_kafka_metadata* md = nullptr;
  rd_kafka_resp_err_t err;
  {
    std::shared_lock lock(producer_mutex_);
    err = rd_kafka_metadata(producer_, 0, nullptr, &md, 1500);
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    detail = std::string("metadata request failed: ") + rd_kafka_err2str(err);
    return false;
  }
  const int brokers = md->broker_cnt;
  rd_kafka_metadata_destroy(md);
  if (brokers == 0) {
    detail = "the cluster reports no brokers";
    return false;
  }
  detail = std::to_string(brokers) + " broker(s) reachable";
  return true;
}

void KafkaPublisher::control_loop() {
  std::unique_lock lock(control_mutex_);
  bool first = true;  // check at once on start-up rather than a second later
  while (!stopping_.load()) {
    if (!first) {
      control_cv_.wait_for(lock, std::chrono::seconds(1),
                           [this] { return stopping_.load() || !probes_.empty() || fatal_.load(); });
    }
    first = false;
    if (stopping_.load()) break;
    if (fatal_.exchange(false)) {
      lock.unlock();
      recreate_producer();
      lock.lock();
    }
    std::deque<broker::ProbeCallback> probes;
    probes.swap(probes_);
    if (probes.empty() && broker_up_.load()) continue;
    lock.unlock();
    std::string detail;
    const bool ok = metadata_round_trip(detail);
    if (ok && !broker_up_.exchange(true)) spdlog::info("kafka: broker reachable ({})", detail);
    if (!ok) broker_up_.store(false);
    for (auto& cb : probes) cb(ok, detail);
    lock.lock();
  }
  lock.unlock();
  std::deque<broker::ProbeCallback> probes;
  {
    std::lock_guard g(control_mutex_);
    probes.swap(probes_);
  }
  for (auto& cb : probes) cb(false, "shutting down");
}

void KafkaPublisher::inject_fatal_error(const char* reason) {
  std::shared_lock lock(producer_mutex_);
  rd_kafka_test_fatal_error(producer_, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, reason);
}

void KafkaPublisher::recreate_producer() {
  rd_kafka_t* fresh = make_producer();
  rd_kafka_t* old = nullptr;
  {
    std::unique_lock lock(producer_mutex_);
    old = producer_;
    producer_ = fresh;
  }
  // Undelivered messages of the old producer come back through on_delivery, which re-sends them.
  rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  while (rd_kafka_outq_len(old) > 0) rd_kafka_poll(old, 50);
  rd_kafka_destroy(old);
  // Every delivery report of the old producer has been served: what it handed back is parked.
  std::vector<Parked> parked;
  {
    std::lock_guard lock(parked_mutex_);
    parked.swap(parked_);
  }
  std::size_t resent = 0;
  for (auto& p : parked) {
    rd_kafka_resp_err_t err;
    {
      std::shared_lock lock(producer_mutex_);
      err = rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(p.topic.c_str()), RD_KAFKA_V_PARTITION(p.partition),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(p.key.data(), p.key.size()),
                              RD_KAFKA_V_VALUE(p.value.data(), p.value.size()), RD_KAFKA_V_TIMESTAMP(p.timestamp_ms),
                              RD_KAFKA_V_HEADERS(p.headers), RD_KAFKA_V_OPAQUE(p.pending), RD_KAFKA_V_END);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++resent;
      continue;
    }
    if (p.headers) rd_kafka_headers_destroy(p.headers);
    fail_parked(p.pending, std::string("cannot re-send after a fatal producer error: ") + rd_kafka_err2str(err));
  }
  spdlog::info("kafka: producer recreated after fatal error; {} undelivered event(s) re-sent", resent);
}

void KafkaPublisher::probe(broker::ProbeCallback done) {
  {
    std::lock_guard lock(control_mutex_);
    if (!stopping_.load()) {
      probes_.push_back(std::move(done));
      control_cv_.notify_all();
      return;
    }
  }
  done(false, "shutting down");
}

void KafkaPublisher::fail_parked(void* opaque, std::string detail) {
  auto* pending = static_cast<Pending*>(opaque);
  PublishResult r;
  r.status = pending->may_exist ? PublishStatus::kTimedOut : PublishStatus::kBrokerUnavailable;
  r.detail = std::move(detail);
  if (pending->may_exist) r.detail += " (the first attempt may have been stored)";
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  auto cb = std::move(pending->done);
  delete pending;
  cb(std::move(r));
}

std::size_t KafkaPublisher::drain(std::chrono::milliseconds deadline) {
  if (draining_.exchange(true)) {
    return in_flight();
  }
  rd_kafka_flush(producer_, static_cast<int>(deadline.count()));
  const std::size_t left = in_flight();
  if (left > 0) {
    // Whatever is still queued gets a verdict now rather than never.
    rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(producer_, 1000);
  }
  stopping_.store(true);
  control_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
  if (control_.joinable()) control_.join();
  // A fatal error the control thread did not get to handle: what was parked gets a verdict now.
  std::vector<Parked> parked;
  {
    std::lock_guard lock(parked_mutex_);
    parked.swap(parked_);
  }
  for (auto& p : parked) {
    if (p.headers) rd_kafka_headers_destroy(p.headers);
    fail_parked(p.pending, "shutting down after a fatal producer error");
  }
  rd_kafka_destroy(producer_);
  producer_ = nullptr;
  return left;
}

}  // namespace pix::kafka
