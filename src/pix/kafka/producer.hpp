#pragma once
/// @file Idempotent, acknowledged Kafka publishing over librdkafka.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "pix/broker/publisher.hpp"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_headers_s rd_kafka_headers_t;

namespace pix::kafka {

/// @brief Settings of the Kafka producer. `extra` passes any librdkafka property through
/// (SASL, TLS, compression...), applied last.
struct ProducerOptions {
  std::string bootstrap_servers = "127.0.0.1:9092";
  std::string client_id = "pix-api";
  int linger_ms = 5;
  std::chrono::milliseconds ack_timeout{5000};  ///< message.timeout.ms: after it the verdict is kTimedOut
  std::size_t max_in_flight = 20000;
  std::map<std::string, std::string> extra;
};

/// @brief Publisher whose kAcked means: acks=all, idempotent producer, delivery report in hand.
///
/// Broker reachability is tracked (librdkafka's all-brokers-down error, delivery reports and a
/// metadata round trip every second while down) so that a publish while the broker is away is
/// answered kBrokerUnavailable at once instead of waiting out the ack timeout. A fatal
/// idempotence error recreates the producer and re-sends what the old one had not delivered,
/// under the same event ids.
class KafkaPublisher final : public broker::Publisher {
 public:
  explicit KafkaPublisher(ProducerOptions options);
  /// Drains (bounded by the ack timeout): may block.
  ~KafkaPublisher() override;
  KafkaPublisher(const KafkaPublisher&) = delete;
  KafkaPublisher& operator=(const KafkaPublisher&) = delete;

  void publish(broker::OutboundEvent event, broker::PublishCallback done) override;
  void probe(broker::ProbeCallback done) override;
  std::size_t drain(std::chrono::milliseconds deadline) override;
  std::size_t in_flight() const noexcept override { return in_flight_.load(std::memory_order_relaxed); }

  /// True while the last evidence says a broker is reachable.
  bool broker_up() const noexcept { return broker_up_.load(std::memory_order_relaxed); }

  /// For tests: raises a fatal idempotent-producer error (librdkafka's rd_kafka_test_fatal_error),
  /// as a broker-side sequence error would, so that the recreate path runs.
  void inject_fatal_error(const char* reason);

  // librdkafka callbacks; public only so the C trampolines can reach them.
  void on_delivery(rd_kafka_t* rk, const void* message);
  void on_error(rd_kafka_t* rk, int err, const char* reason);

 private:
  /// An event a producer with a fatal error handed back, waiting for the new producer.
  struct Parked {
    std::string topic;
    std::int32_t partition = -1;
    std::string key;
    std::string value;
    std::int64_t timestamp_ms = 0;
    rd_kafka_headers_t* headers = nullptr;  ///< owned until handed to the new producer
    void* pending = nullptr;                ///< the event's callback state
  };

  rd_kafka_t* make_producer();
  /// Answers a parked event that cannot be re-sent: "may exist" if any attempt may have written it.
  void fail_parked(void* pending, std::string detail);
  void poll_loop();
  void control_loop();
  void recreate_producer();
  bool metadata_round_trip(std::string& detail);

  ProducerOptions options_;
  std::shared_mutex producer_mutex_;  // shared: produce/poll; exclusive: swap after a fatal error
  rd_kafka_t* producer_ = nullptr;
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

}  // namespace pix::kafka
