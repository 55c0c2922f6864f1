#pragma once
// Reads back exactly what the gateway wrote: records at known (topic, partition, offset).

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pix/kafka/consumer.hpp"

namespace pix::test {

using KafkaRecord = kafka::ConsumedRecord;

/// Records of one partition from `from` (inclusive) until `until` (exclusive), or until the
/// timeout when fewer arrive. No consumer group: nothing is committed. `extra`: librdkafka
/// properties (TLS/SASL of the secure profile).
std::vector<KafkaRecord> read_partition(const std::string& bootstrap, const std::string& topic, std::int32_t partition,
                                        std::int64_t from, std::int64_t until,
                                        std::chrono::milliseconds timeout = std::chrono::seconds(15),
                                        const std::map<std::string, std::string>& extra = {});

/// The single record at (topic, partition, offset), if it arrives within the timeout.
std::optional<KafkaRecord> read_one(const std::string& bootstrap, const std::string& topic, std::int32_t partition,
                                    std::int64_t offset, std::chrono::milliseconds timeout = std::chrono::seconds(15),
                                    const std::map<std::string, std::string>& extra = {});

}  // namespace pix::test
