#include "pix/kafka/producer.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "pix/broker/guarded_callback.hpp"
#include "pix/kafka/handles.hpp"
#include "pix/util/invariant.hpp"

// librdkafka's RD_KAFKA_V_* varargs macros are C casts by design.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace pix::kafka {
namespace {

using broker::PublishResult;
using broker::PublishStatus;
using Clock = std::chrono::steady_clock;

// What each message carries through librdkafka as its opaque.
struct Pending {
  broker::PublishCallback done;
  Clock::time_point started;
  /// A retired producer may have written it: whatever the resend's fate, never "nothing stored".
  bool may_exist = false;
};

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

int millis_until(Clock::time_point until) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
  return static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, left.count()));
}

}  // namespace

class KafkaPublisher::Impl {
 public:
  explicit Impl(ProducerOptions options) : options_(std::move(options)) {
    producer_ = make_producer();
    poller_ = std::thread([this] { poll_loop(); });
    control_ = std::thread([this] { control_loop(); });
  }

  ~Impl() { drain(options_.ack_timeout); }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void publish(broker::OutboundEvent ev, broker::PublishCallback done);
  void probe(broker::ProbeCallback done);
  std::size_t drain(std::chrono::milliseconds deadline);
  std::size_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }
  bool broker_up() const noexcept { return broker_up_.load(std::memory_order_relaxed); }
  void inject_fatal_error(const char* reason);

 private:
  /// An event a producer with a fatal error handed back, waiting for the new producer.
  struct Parked {
    std::string topic;
    std::int32_t partition = -1;
    std::string key;
    std::string value;
    std::int64_t timestamp_ms = 0;
    detail::HeadersHandle headers;     ///< owned until handed to the new producer
    std::unique_ptr<Pending> pending;  ///< the event's callback state
  };

  // librdkafka's callbacks (the opaque is the Impl): nothing may throw through them.
  static void delivery_callback(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque) {
    broker::guarded("kafka delivery report", [&] { static_cast<Impl*>(opaque)->on_delivery(rk, msg); });
  }
  static void error_callback(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    broker::guarded("kafka producer error callback", [&] { static_cast<Impl*>(opaque)->on_error(rk, err, reason); });
  }

  void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* msg);
  void on_error(rd_kafka_t* rk, int err, const char* reason);
  detail::ClientHandle make_producer();
  /// Gives an accepted event its verdict: every accepted event ends here exactly once.
  void answer(std::unique_ptr<Pending> pending, PublishResult result);
  /// Answers a parked event that cannot be re-sent: "may exist" if any attempt may have written it.
  void fail_parked(std::unique_ptr<Pending> pending, std::string detail);
  void poll_loop();
  void control_loop();
  void recreate_producer();
  bool metadata_round_trip(std::string& detail);

  ProducerOptions options_;
  std::shared_mutex producer_mutex_;  // shared: produce/poll; exclusive: swap after a fatal error
  detail::ClientHandle producer_;
  // Held by recreate_producer() for the whole swap (and its resends) and by drain() while it
  // flushes: see drain().
  std::mutex recreate_mutex_;
  std::atomic<bool> broker_up_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> fatal_{false};
  std::atomic<std::size_t> in_flight_{0};

  std::mutex parked_mutex_;
  std::vector<Parked> parked_;

  std::mutex control_mutex_;
  std::condition_variable control_cv_;
  std::deque<broker::ProbeCallback> probes_;

  std::thread poller_;
  std::thread control_;
};

detail::ClientHandle KafkaPublisher::Impl::make_producer() {
  auto conf = detail::new_conf();
  const auto set = [c = conf.get()](const std::string& k, const std::string& v) { detail::set_option(c, k, v); };
  set("bootstrap.servers", options_.bootstrap_servers);
  set("client.id", options_.client_id);
  set("enable.idempotence", "true");
  set("acks", "all");
  set("linger.ms", std::to_string(options_.linger_ms));
  set("message.timeout.ms", std::to_string(options_.ack_timeout.count()));
  // librdkafka's own queue is sized above ours, so our in-flight limit is the one that bites.
  set("queue.buffering.max.messages", std::to_string(options_.max_in_flight + 1000));
  set("reconnect.backoff.ms", "50");
  set("reconnect.backoff.max.ms", "1000");
  set("socket.keepalive.enable", "true");
  detail::set_options(conf.get(), options_.extra);
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &Impl::delivery_callback);
  rd_kafka_conf_set_error_cb(conf.get(), &Impl::error_callback);
  rd_kafka_conf_set_log_cb(conf.get(), &detail::log_to_spdlog);
  return detail::new_client(RD_KAFKA_PRODUCER, std::move(conf), "producer");
}

void KafkaPublisher::Impl::answer(std::unique_ptr<Pending> pending, PublishResult result) {
  const std::size_t before = in_flight_.fetch_sub(1, std::memory_order_relaxed);
  if (before == 0) {
    in_flight_.fetch_add(1, std::memory_order_relaxed);  // an underflow would refuse every publish
  }
  PIX_BUG(before > 0, "kafka publisher: a verdict ({}) for an event not counted in flight",
          broker::to_string(result.status));
  auto done = std::move(pending->done);
  pending.reset();
  broker::guarded("kafka publish callback", [&] { done(std::move(result)); });
}

void KafkaPublisher::Impl::publish(broker::OutboundEvent ev, broker::PublishCallback done) {
  const auto refuse = [&done](PublishStatus status, const char* detail) {
    broker::guarded("kafka publish callback", [&] { done({status, detail, -1, -1}); });
  };
  if (draining_.load(std::memory_order_relaxed))
    return refuse(PublishStatus::kShuttingDown, "the service is shutting down");
  if (!broker_up_.load(std::memory_order_relaxed)) {
    return refuse(PublishStatus::kBrokerUnavailable, "no Kafka broker is reachable");
  }
  if (in_flight_.fetch_add(1, std::memory_order_relaxed) >= options_.max_in_flight) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    return refuse(PublishStatus::kQueueFull, "too many events waiting for the broker");
  }

  detail::HeadersHandle headers(rd_kafka_headers_new(ev.headers.size() + 1));
  for (const auto& h : ev.headers) {
    rd_kafka_header_add(headers.get(), h.name.data(), static_cast<ssize_t>(h.name.size()), h.value.data(),
                        static_cast<ssize_t>(h.value.size()));
  }
  auto pending = std::make_unique<Pending>(Pending{std::move(done), Clock::now()});

  rd_kafka_resp_err_t err;
  {
    std::shared_lock lock(producer_mutex_);
    err =
        rd_kafka_producev(producer_.get(), RD_KAFKA_V_TOPIC(ev.topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_PARTITION(ev.partition < 0 ? RD_KAFKA_PARTITION_UA : ev.partition),
                          RD_KAFKA_V_KEY(ev.key.data(), ev.key.size()),
                          RD_KAFKA_V_VALUE(ev.payload.data(), ev.payload.size()), RD_KAFKA_V_TIMESTAMP(ev.timestamp_ms),
                          RD_KAFKA_V_HEADERS(headers.get()), RD_KAFKA_V_OPAQUE(pending.get()), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      // librdkafka owns both now, until the delivery report.
      static_cast<void>(headers.release());
      static_cast<void>(pending.release());
      return;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL && !draining_.load()) {
      // The producer is being replaced: parked (under the shared lock, so before the swap and
      // before recreate_producer() collects what is parked), and sent on the new one.
      Parked p{std::move(ev.topic), ev.partition,       std::move(ev.key), std::move(ev.payload),
               ev.timestamp_ms,     std::move(headers), std::move(pending)};
      std::lock_guard parked_lock(parked_mutex_);
      parked_.push_back(std::move(p));
      return;
    }
  }
  // Ownership passes to librdkafka only on success: the headers are destroyed with their holder.
  PublishResult r{PublishStatus::kBrokerUnavailable, rd_kafka_err2str(err), -1, -1};
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) r.status = PublishStatus::kQueueFull;
  if (err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
    r.status = PublishStatus::kRejected;
  }
  answer(std::move(pending), std::move(r));
}

void KafkaPublisher::Impl::on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* msg) {
  std::unique_ptr<Pending> pending(static_cast<Pending*>(msg->_private));
  PIX_BUG(pending != nullptr, "kafka publisher: a delivery report for {}/{} without its callback state",
          rd_kafka_topic_name(msg->rkt), msg->partition);
  if (!pending) return;

  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR && !draining_.load() &&
      (rk != producer_.get() || rd_kafka_fatal_error(rk, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)) {
    // A producer with a fatal idempotence error hands back what it could not deliver (it fails
    // its queue itself, then our purge fails the rest): parked, and sent again on the new producer
    // by recreate_producer(), same key, value, headers, partition and event id.
    Parked p;
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      p.headers.reset(rd_kafka_headers_copy(hdrs));
    }
    if (rd_kafka_message_status(msg) != RD_KAFKA_MSG_STATUS_NOT_PERSISTED) pending->may_exist = true;
    p.topic = rd_kafka_topic_name(msg->rkt);
    p.partition = msg->partition;
    if (msg->key) p.key.assign(static_cast<const char*>(msg->key), msg->key_len);
    if (msg->payload) p.value.assign(static_cast<const char*>(msg->payload), msg->len);
    p.timestamp_ms = rd_kafka_message_timestamp(msg, nullptr);
    p.pending = std::move(pending);
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
  answer(std::move(pending), std::move(r));
}

void KafkaPublisher::Impl::on_error(rd_kafka_t* rk, int err, const char* reason) {
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

void KafkaPublisher::Impl::poll_loop() {
  while (!stopping_.load()) {
    std::shared_lock lock(producer_mutex_);
    rd_kafka_poll(producer_.get(), 50);
  }
}

bool KafkaPublisher::Impl::metadata_round_trip(std::string& detail) {
  detail::MetadataHandle md;
  rd_kafka_resp_err_t err;
  {
    std::shared_lock lock(producer_mutex_);
    err = detail::fetch_metadata(producer_.get(), nullptr, 1500, md);
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    detail = std::string("metadata request failed: ") + rd_kafka_err2str(err);
    return false;
  }
  const int brokers = md->broker_cnt;
  if (brokers == 0) {
    detail = "the cluster reports no brokers";
    return false;
  }
  detail = std::to_string(brokers) + " broker(s) reachable";
  return true;
}

void KafkaPublisher::Impl::control_loop() {
  const auto answer_probes = [](std::deque<broker::ProbeCallback>& probes, bool ok, const std::string& detail) {
    for (auto& cb : probes) broker::guarded("kafka probe callback", [&] { cb(ok, detail); });
  };
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
    answer_probes(probes, ok, detail);
    lock.lock();
  }
  lock.unlock();
  std::deque<broker::ProbeCallback> probes;
  {
    std::lock_guard g(control_mutex_);
    probes.swap(probes_);
  }
  answer_probes(probes, false, "shutting down");
}

void KafkaPublisher::Impl::inject_fatal_error(const char* reason) {
  std::shared_lock lock(producer_mutex_);
  rd_kafka_test_fatal_error(producer_.get(), RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, reason);
}

void KafkaPublisher::Impl::recreate_producer() {
  std::lock_guard recreating(recreate_mutex_);
  // drain() set draining_ before taking recreate_mutex_: once it holds the mutex it flushes the
  // producer in place, and a recreation after that would pull the producer from under it. What a
  // fatal producer still holds is answered by that flush; what was parked, by drain() itself.
  if (draining_.load()) return;
  detail::ClientHandle old;
  {
    auto fresh = make_producer();
    std::unique_lock lock(producer_mutex_);
    old = std::exchange(producer_, std::move(fresh));
  }
  // Undelivered messages of the old producer come back through on_delivery, which parks them.
  rd_kafka_purge(old.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  while (rd_kafka_outq_len(old.get()) > 0) rd_kafka_poll(old.get(), 50);
  old.reset();
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
      err = rd_kafka_producev(producer_.get(), RD_KAFKA_V_TOPIC(p.topic.c_str()), RD_KAFKA_V_PARTITION(p.partition),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(p.key.data(), p.key.size()),
                              RD_KAFKA_V_VALUE(p.value.data(), p.value.size()), RD_KAFKA_V_TIMESTAMP(p.timestamp_ms),
                              RD_KAFKA_V_HEADERS(p.headers.get()), RD_KAFKA_V_OPAQUE(p.pending.get()), RD_KAFKA_V_END);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      static_cast<void>(p.headers.release());
      static_cast<void>(p.pending.release());
      ++resent;
      continue;
    }
    fail_parked(std::move(p.pending),
                std::string("cannot re-send after a fatal producer error: ") + rd_kafka_err2str(err));
  }
  spdlog::info("kafka: producer recreated after fatal error; {} undelivered event(s) re-sent", resent);
}

void KafkaPublisher::Impl::probe(broker::ProbeCallback done) {
  {
    std::lock_guard lock(control_mutex_);
    if (!stopping_.load()) {
      probes_.push_back(std::move(done));
      control_cv_.notify_all();
      return;
    }
  }
  broker::guarded("kafka probe callback", [&] { done(false, "shutting down"); });
}

void KafkaPublisher::Impl::fail_parked(std::unique_ptr<Pending> pending, std::string detail) {
  PublishResult r;
  r.status = pending->may_exist ? PublishStatus::kTimedOut : PublishStatus::kBrokerUnavailable;
  r.detail = std::move(detail);
  if (pending->may_exist) r.detail += " (the first attempt may have been stored)";
  answer(std::move(pending), std::move(r));
}

std::size_t KafkaPublisher::Impl::drain(std::chrono::milliseconds deadline) {
  const auto until = Clock::now() + deadline;
  if (draining_.exchange(true)) {
    return in_flight();
  }
  std::size_t left = 0;
  {
    // The race this closes: the control thread may be in recreate_producer(), swapping
    // producer_ and destroying the old one, while this thread flushes it. Taking
    // recreate_mutex_ waits for a recreation under way to finish (its resends are then on the
    // new producer and flushed below), and draining_, set above, stops any later one before it
    // swaps; so producer_ stays the same handle until this thread destroys it.
    std::lock_guard no_recreation(recreate_mutex_);
    rd_kafka_flush(producer_.get(), millis_until(until));
    left = in_flight();
    if (left > 0) {
      // Whatever is still queued gets a verdict now rather than never.
      rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_flush(producer_.get(), 1000);
    }
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
  for (auto& p : parked) fail_parked(std::move(p.pending), "shutting down after a fatal producer error");
  producer_.reset();
  return left;
}

KafkaPublisher::KafkaPublisher(ProducerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

KafkaPublisher::~KafkaPublisher() = default;

void KafkaPublisher::publish(broker::OutboundEvent event, broker::PublishCallback done) {
  impl_->publish(std::move(event), std::move(done));
}

void KafkaPublisher::probe(broker::ProbeCallback done) {
  impl_->probe(std::move(done));
}

std::size_t KafkaPublisher::drain(std::chrono::milliseconds deadline) {
  return impl_->drain(deadline);
}

std::size_t KafkaPublisher::in_flight() const noexcept {
  return impl_->in_flight();
}

bool KafkaPublisher::broker_up() const noexcept {
  return impl_->broker_up();
}

void KafkaPublisher::inject_fatal_error(const char* reason) {
  impl_->inject_fatal_error(reason);
}

}  // namespace pix::kafka
