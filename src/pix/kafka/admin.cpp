#include "pix/kafka/admin.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <memory>
#include <stdexcept>

namespace pix::kafka {
namespace {

struct Handle {
  rd_kafka_t* rk = nullptr;
  ~Handle() {
    if (rk) rd_kafka_destroy(rk);
  }
};

std::unique_ptr<Handle> connect(const std::string& bootstrap, const std::map<std::string, std::string>& extra) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::invalid_argument("kafka option " + k + ": " + err);
    }
  };
  set("bootstrap.servers", bootstrap);
  set("client.id", "pix-admin");
  for (const auto& [k, v] : extra) set(k, v);
  auto h = std::make_unique<Handle>();
  h->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!h->rk) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("cannot create Kafka client: ") + err);
  }
  return h;
}

int brokers_of(rd_kafka_t* rk, std::chrono::milliseconds timeout, const std::string& bootstrap) {
  const struct rd_kafka_metadata* md = nullptr;
  const auto err = rd_kafka_metadata(rk, 0, nullptr, &md, static_cast<int>(timeout.count()));
  if (err) throw std::runtime_error("Kafka at " + bootstrap + " is unreachable: " + rd_kafka_err2str(err));
  const int n = md->broker_cnt;
  rd_kafka_metadata_destroy(md);
  return n;
}

// Runs one admin request and waits for its result event.
rd_kafka_event_t* wait_result(rd_kafka_queue_t* q, std::chrono::milliseconds timeout, rd_kafka_event_type_t type) {
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, static_cast<int>(timeout.count()) + 1000);
  if (!ev) throw std::runtime_error("Kafka admin request timed out");
  if (rd_kafka_event_type(ev) != type || rd_kafka_event_error(ev)) {
    std::string msg = rd_kafka_event_error_string(ev) ? rd_kafka_event_error_string(ev) : "unexpected event";
    rd_kafka_event_destroy(ev);
    throw std::runtime_error("Kafka admin request failed: " + msg);
  }
  return ev;
}

}  // namespace

int broker_count(const std::string& bootstrap, std::chrono::milliseconds timeout,
                 const std::map<std::string, std::string>& extra) {
  auto h = connect(bootstrap, extra);
  return brokers_of(h->rk, timeout, bootstrap);
}

std::vector<TopicOutcome> create_topics(const std::string& bootstrap, const std::vector<TopicSpec>& topics,
                                        std::chrono::milliseconds timeout,
                                        const std::map<std::string, std::string>& extra) {
  auto h = connect(bootstrap, extra);
  const int brokers = brokers_of(h->rk, timeout, bootstrap);
  char err[512];
  std::vector<rd_kafka_NewTopic_t*> specs;
  for (const auto& t : topics) {
    const int rf = t.replication_factor > 0 ? t.replication_factor : std::min(3, brokers);
    auto* nt = rd_kafka_NewTopic_new(t.name.c_str(), t.partitions, rf, err, sizeof err);
    if (!nt) {
      for (auto* s : specs) rd_kafka_NewTopic_destroy(s);
      throw std::invalid_argument("topic " + t.name + ": " + err);
    }
    for (const auto& [k, v] : t.config) rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
    specs.push_back(nt);
  }
  rd_kafka_queue_t* q = rd_kafka_queue_new(h->rk);
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(h->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(opts, static_cast<int>(timeout.count()), err, sizeof err);
  rd_kafka_CreateTopics(h->rk, specs.data(), specs.size(), opts, q);
  rd_kafka_AdminOptions_destroy(opts);
  for (auto* s : specs) rd_kafka_NewTopic_destroy(s);

  std::vector<TopicOutcome> out;
  rd_kafka_event_t* ev = nullptr;
  try {
    ev = wait_result(q, timeout, RD_KAFKA_EVENT_CREATETOPICS_RESULT);
  } catch (...) {
    rd_kafka_queue_destroy(q);
    throw;
  }
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
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
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  return out;
}

void delete_topics(const std::string& bootstrap, const std::vector<std::string>& names,
                   std::chrono::milliseconds timeout, const std::map<std::string, std::string>& extra) {
  auto h = connect(bootstrap, extra);
  std::vector<rd_kafka_DeleteTopic_t*> specs;
  for (const auto& n : names) specs.push_back(rd_kafka_DeleteTopic_new(n.c_str()));
  rd_kafka_queue_t* q = rd_kafka_queue_new(h->rk);
  rd_kafka_DeleteTopics(h->rk, specs.data(), specs.size(), nullptr, q);
  for (auto* s : specs) rd_kafka_DeleteTopic_destroy(s);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, static_cast<int>(timeout.count()));
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
}

}  // namespace pix::kafka
