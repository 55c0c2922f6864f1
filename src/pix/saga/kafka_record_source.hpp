#pragma once
/// @file The stage's default RecordSource: a Kafka consumer-group member.

#include <memory>

#include "pix/kafka/consumer.hpp"
#include "pix/saga/record_source.hpp"

namespace pix::saga {

/// @brief RecordSource over kafka::KafkaConsumer. The consumer's before_revoke is this source's
/// (any set in the options is replaced): it forwards to the hook the stage installs.
class KafkaRecordSource final : public RecordSource {
 public:
  explicit KafkaRecordSource(kafka::ConsumerOptions options);
  /// Leaves the group (the consumer commits what is done first): may block for a few seconds.
  ~KafkaRecordSource() override;
  KafkaRecordSource(const KafkaRecordSource&) = delete;
  KafkaRecordSource& operator=(const KafkaRecordSource&) = delete;

  void on_before_revoke(RevokeHook hook) override;
  std::optional<kafka::ConsumedRecord> poll(std::chrono::milliseconds timeout) override;
  void mark_done(const std::string& topic, std::int32_t partition, std::int64_t offset) override;
  void commit(bool sync) override;
  [[nodiscard]] bool assigned() const noexcept override;
  [[nodiscard]] std::int64_t lag() const noexcept override;

 private:
  RevokeHook hook_;  // before consumer_: the consumer's destructor may still revoke through it
  std::unique_ptr<kafka::KafkaConsumer> consumer_;
};

}  // namespace pix::saga
