#pragma once
/// @file Where a stage's input records come from: the consumer seam of saga::KafkaStage.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pix/kafka/consumer.hpp"

namespace pix::saga {

/// @brief The input of a stage: records to process, and the offsets it may commit once their
/// outputs are acknowledged. KafkaStage's default is a consumer-group member
/// (kafka::KafkaConsumer); a test scripts its own.
///
/// Threads: poll(), mark_done() and commit() are called from the stage's thread only; assigned()
/// and lag() from any thread (readiness, metrics).
class RecordSource {
 public:
  using Partitions = std::vector<std::pair<std::string, std::int32_t>>;
  /// Runs before partitions go to another member, before what is done on them is committed.
  using RevokeHook = std::function<void(const Partitions&)>;

  virtual ~RecordSource() = default;

  /// Installs the revocation hook; the stage calls it once, before its first poll(). The source
  /// calls the hook on the stage's thread, from inside poll() (so the stage may wait for its
  /// outputs there), and may call it while it is destroyed (leaving the group).
  virtual void on_before_revoke(RevokeHook hook) = 0;
  /// The next record, or nullopt after `timeout`.
  virtual std::optional<kafka::ConsumedRecord> poll(std::chrono::milliseconds timeout) = 0;
  /// The record's outputs are acknowledged: its offset may be committed.
  virtual void mark_done(const std::string& topic, std::int32_t partition, std::int64_t offset) = 0;
  /// Commits, per partition, the offset after the longest prefix of done records (waiting for the
  /// broker's answer only if `sync`).
  virtual void commit(bool sync = false) = 0;
  /// The source has partitions to read (the stage's readiness).
  [[nodiscard]] virtual bool assigned() const noexcept = 0;
  /// Records behind the end of the assigned partitions; -1 when unknown.
  [[nodiscard]] virtual std::int64_t lag() const noexcept = 0;
};

}  // namespace pix::saga
