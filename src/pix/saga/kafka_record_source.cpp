#include "pix/saga/kafka_record_source.hpp"

#include <utility>

namespace pix::saga {

KafkaRecordSource::KafkaRecordSource(kafka::ConsumerOptions options) {
  // The consumer takes its hook at construction, the stage installs its own afterwards.
  options.before_revoke = [this](const Partitions& partitions) {
    if (hook_) hook_(partitions);
  };
  consumer_ = std::make_unique<kafka::KafkaConsumer>(std::move(options));
}

KafkaRecordSource::~KafkaRecordSource() = default;

void KafkaRecordSource::on_before_revoke(RevokeHook hook) {
  hook_ = std::move(hook);
}

std::optional<kafka::ConsumedRecord> KafkaRecordSource::poll(std::chrono::milliseconds timeout) {
  return consumer_->poll(timeout);
}

void KafkaRecordSource::mark_done(const std::string& topic, std::int32_t partition, std::int64_t offset) {
  consumer_->mark_done(topic, partition, offset);
}

void KafkaRecordSource::commit(bool sync) {
  consumer_->commit(sync);
}

bool KafkaRecordSource::assigned() const noexcept {
  return consumer_->assigned();
}

std::int64_t KafkaRecordSource::lag() const noexcept {
  return consumer_->lag();
}

}  // namespace pix::saga
