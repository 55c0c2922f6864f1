#pragma once
/// @file A Kafka consumer for at-least-once stages: no auto-commit; offsets are committed only
/// for records whose effects are durable.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct rd_kafka_message_s;

namespace pix::kafka {

/// @brief One consumed record, copied out of librdkafka.
struct ConsumedRecord {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
  std::int64_t timestamp_ms = 0;

  /// The header's value, or "" when absent.
  const std::string& header(const std::string& name) const;
};

/// Copies a message librdkafka handed out (key, value, headers, position, timestamp).
ConsumedRecord copy_record(const rd_kafka_message_s* message);

struct ConsumerOptions {
  std::string bootstrap_servers = "127.0.0.1:9092";
  std::string group_id;
  std::vector<std::string> topics;
  std::string client_id = "pix-consumer";
  std::string auto_offset_reset = "earliest";
  /// Static group membership (KIP-345): a member that restarts with the same id gets its
  /// partitions back at once instead of after a rebalance. Must be unique per running replica
  /// (e.g. the pod name). Empty: dynamic membership.
  std::string instance_id;
  /// How long the group waits for a silent member (crashed, frozen) before giving its
  /// partitions to others. librdkafka's default (45 s) is long for a payment flow.
  std::chrono::milliseconds session_timeout{10000};
  /// librdkafka statistics interval; 0 disables lag reporting.
  int statistics_interval_ms = 5000;
  std::map<std::string, std::string> extra;
  /// Called on the polling thread when partitions are about to go to another member, before
  /// what is done is committed: the last chance to finish in-flight work on them, so that the
  /// next owner starts where this one really stopped.
  std::function<void(const std::vector<std::pair<std::string, std::int32_t>>&)> before_revoke;
};

/// @brief Consumer-group member with manual offset commits. Not thread-safe: one thread polls.
///
/// poll() returns records; the caller calls mark_done() once a record's effect is durable, and
/// commit() stores, per partition, the offset after the highest record whose predecessors are
/// all done (so an out-of-order completion never commits past an unfinished record).
class KafkaConsumer {
 public:
  explicit KafkaConsumer(ConsumerOptions options);
  /// Commits what is done and leaves the group: may block for a few seconds.
  ~KafkaConsumer();
  KafkaConsumer(const KafkaConsumer&) = delete;
  KafkaConsumer& operator=(const KafkaConsumer&) = delete;

  /// Next record, or nullopt after `timeout` (or on a transient error, which is logged).
  std::optional<ConsumedRecord> poll(std::chrono::milliseconds timeout);
  /// The record's effects are durable: its offset may be committed.
  void mark_done(const std::string& topic, std::int32_t partition, std::int64_t offset);
  /// Commit every done prefix (asynchronously unless `sync`).
  void commit(bool sync = false);
  /// Sum of the consumer lag over assigned partitions from the last statistics (-1 if unknown).
  std::int64_t lag() const noexcept;
  /// True while the group has given this member at least one partition or the subscription is
  /// active and the broker reachable.
  bool assigned() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pix::kafka
