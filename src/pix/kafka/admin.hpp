#pragma once
/// @file Kafka topic administration (idempotent), used by `pix-admin` and by tests.

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace pix::kafka {

struct TopicSpec {
  std::string name;
  int partitions = 3;
  int replication_factor = -1;  ///< -1: min(3, number of brokers)
  std::map<std::string, std::string> config;
};

/// @brief Outcome per topic: "created", "exists", or an error message.
struct TopicOutcome {
  std::string name;
  bool ok = false;
  std::string status;
};

/// Create the topics that do not exist yet. Throws std::runtime_error when the cluster cannot be
/// reached within `timeout`.
std::vector<TopicOutcome> create_topics(const std::string& bootstrap, const std::vector<TopicSpec>& topics,
                                        std::chrono::milliseconds timeout = std::chrono::seconds(30),
                                        const std::map<std::string, std::string>& extra = {});

/// Delete topics (missing ones are fine). For tests and teardown.
void delete_topics(const std::string& bootstrap, const std::vector<std::string>& names,
                   std::chrono::milliseconds timeout = std::chrono::seconds(30),
                   const std::map<std::string, std::string>& extra = {});

/// Number of brokers the cluster reports; throws when unreachable.
int broker_count(const std::string& bootstrap, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                 const std::map<std::string, std::string>& extra = {});

}  // namespace pix::kafka
