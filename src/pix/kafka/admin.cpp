#include "pix/kafka/admin.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <stdexcept>

#include "pix/kafka/handles.hpp"

namespace pix::kafka {
namespace {

int brokers_of(rd_kafka_t* rk, std::chrono::milliseconds timeout, const std::string& bootstrap) {
  detail::MetadataHandle md;
  if (const auto err = detail::fetch_metadata(rk, nullptr, static_cast<int>(timeout.count()), md)) {
    throw std::runtime_error("Kafka at " + bootstrap + " is unreachable: " + rd_kafka_err2str(err));
  }
  return md->broker_cnt;
}

}  // namespace

int broker_count(const std::string& bootstrap, std::chrono::milliseconds timeout,
                 const std::map<std::string, std::string>& extra) {
  const auto rk = detail::new_admin_client(bootstrap, extra);
  return brokers_of(rk.get(), timeout, bootstrap);
}

std::vector<TopicOutcome> create_topics(const std::string& bootstrap, const std::vector<TopicSpec>& topics,
                                        std::chrono::milliseconds timeout,
                                        const std::map<std::string, std::string>& extra) {
  const auto rk = detail::new_admin_client(bootstrap, extra);
  const int brokers = brokers_of(rk.get(), timeout, bootstrap);
  char err[512];
  std::vector<detail::NewTopicHandle> specs;
  for (const auto& t : topics) {
    const int rf = t.replication_factor > 0 ? t.replication_factor : std::min(3, brokers);
    detail::NewTopicHandle nt(rd_kafka_NewTopic_new(t.name.c_str(), t.partitions, rf, err, sizeof err));
    if (!nt) throw std::invalid_argument("topic " + t.name + ": " + err);
    for (const auto& [k, v] : t.config) rd_kafka_NewTopic_set_config(nt.get(), k.c_str(), v.c_str());
    specs.push_back(std::move(nt));
  }
  const int timeout_ms = static_cast<int>(timeout.count());
  const auto ev =
      detail::admin_request(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms, RD_KAFKA_EVENT_CREATETOPICS_RESULT,
                            "CreateTopics", bootstrap, [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                              rd_kafka_AdminOptions_set_operation_timeout(options, timeout_ms, err, sizeof err);
                              auto raw = detail::raw(specs);
                              rd_kafka_CreateTopics(rk.get(), raw.data(), raw.size(), options, queue);
                            });
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &n);
  std::vector<TopicOutcome> out;
  for (size_t i = 0; i < n; ++i) {
    const auto code = rd_kafka_topic_result_error(results[i]);
    TopicOutcome o{rd_kafka_topic_result_name(results[i]), true, "created"};
    if (code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      o.status = "exists";
    } else if (code) {
      o.ok = false;
      const char* msg = rd_kafka_topic_result_error_string(results[i]);
      o.status = msg ? msg : rd_kafka_err2str(code);
    }
    out.push_back(std::move(o));
  }
  return out;
}

void delete_topics(const std::string& bootstrap, const std::vector<std::string>& names,
                   std::chrono::milliseconds timeout, const std::map<std::string, std::string>& extra) {
  const auto rk = detail::new_admin_client(bootstrap, extra);
  std::vector<detail::DeleteTopicHandle> specs;
  specs.reserve(names.size());
  for (const auto& n : names) specs.emplace_back(rd_kafka_DeleteTopic_new(n.c_str()));
  const detail::QueueHandle q(rd_kafka_queue_new(rk.get()));
  auto raw = detail::raw(specs);
  rd_kafka_DeleteTopics(rk.get(), raw.data(), raw.size(), nullptr, q.get());
  // Best effort: whatever the outcome, the result event (if any) is released.
  const detail::EventHandle ev(rd_kafka_queue_poll(q.get(), static_cast<int>(timeout.count())));
}

}  // namespace pix::kafka
