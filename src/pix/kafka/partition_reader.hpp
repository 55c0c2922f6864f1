#pragma once
/// @file Reading a partition outside any consumer group: from an offset or a time to the
/// partition's end as of the call. What a stage rebuilds its state from, and what
/// `pix-admin verify-audit` reads the audit chain's anchor from.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "pix/kafka/consumer.hpp"

namespace pix::kafka {

struct ReaderOptions {
  std::string bootstrap_servers = "127.0.0.1:9092";
  std::string client_id = "pix-reader";
  std::map<std::string, std::string> extra;  ///< security properties, as for every client
  /// How long one call may take to reach the end it was asked for before it throws.
  std::chrono::milliseconds timeout{30000};
};

/// @brief One partition's low and high watermarks: the first offset held and the offset the next
/// record will get.
struct Watermarks {
  std::int64_t low = 0;
  std::int64_t high = 0;
};

/// @brief A group-less reader: it never joins a group and never commits, so it needs only Read
/// (and Describe) on the topics it reads. Not thread-safe.
///
/// Every call either completes what it was asked or throws std::runtime_error naming the topic,
/// the partition and librdkafka's reason (broker unreachable, not authorized, unknown topic), so
/// a caller never mistakes "could not read" for "nothing there".
class PartitionReader {
 public:
  explicit PartitionReader(ReaderOptions options);
  ~PartitionReader();
  PartitionReader(const PartitionReader&) = delete;
  PartitionReader& operator=(const PartitionReader&) = delete;

  /// Partitions of `topic`, from the cluster's metadata.
  std::int32_t partition_count(const std::string& topic);
  Watermarks watermarks(const std::string& topic, std::int32_t partition);
  /// The first offset whose record's timestamp is at or after `epoch_ms`: the high watermark when
  /// no record is that recent.
  std::int64_t offset_for_time(const std::string& topic, std::int32_t partition, std::int64_t epoch_ms);
  /// Calls `fn` for each record in [from, until), in offset order (offsets the log no longer holds
  /// are skipped). Returns how many records were read.
  std::size_t read(const std::string& topic, std::int32_t partition, std::int64_t from, std::int64_t until,
                   const std::function<void(const ConsumedRecord&)>& fn);
  /// read() from the first record at or after `epoch_ms` up to the high watermark as of now.
  std::size_t read_since(const std::string& topic, std::int32_t partition, std::int64_t epoch_ms,
                         const std::function<void(const ConsumedRecord&)>& fn);

 private:
  struct Client;  ///< the librdkafka consumer, unassigned and destroyed with the reader
  ReaderOptions options_;
  std::unique_ptr<Client> client_;
};

}  // namespace pix::kafka
