#include "pix/kafka/handles.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "pix/broker/guarded_callback.hpp"

namespace pix::kafka::detail {

ConfHandle new_conf() {
  return ConfHandle(rd_kafka_conf_new());
}

void set_option(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    throw std::invalid_argument("kafka option " + key + ": " + err);
  }
}

void set_options(rd_kafka_conf_t* conf, const std::map<std::string, std::string>& options) {
  for (const auto& [key, value] : options) set_option(conf, key, value);
}

ClientHandle new_client(rd_kafka_type_t type, ConfHandle conf, std::string_view what) {
  char err[512];
  ClientHandle rk(rd_kafka_new(type, conf.get(), err, sizeof err));
  if (!rk) throw std::runtime_error("cannot create Kafka " + std::string(what) + ": " + err);
  // The client owns the configuration now: destroying it here would free it twice.
  static_cast<void>(conf.release());
  return rk;
}

ClientHandle new_admin_client(const std::string& bootstrap, const std::map<std::string, std::string>& extra) {
  auto conf = new_conf();
  set_option(conf.get(), "bootstrap.servers", bootstrap);
  set_option(conf.get(), "client.id", "pix-admin");
  set_options(conf.get(), extra);
  return new_client(RD_KAFKA_PRODUCER, std::move(conf), "client");
}

EventHandle wait_admin_result(rd_kafka_queue_t* queue, int timeout_ms, rd_kafka_event_type_t type,
                              std::string_view request, std::string_view bootstrap) {
  EventHandle ev(rd_kafka_queue_poll(queue, timeout_ms));
  if (!ev) {
    throw std::runtime_error("Kafka " + std::string(request) + " timed out (is " + std::string(bootstrap) +
                             " reachable?)");
  }
  if (rd_kafka_event_type(ev.get()) != type || rd_kafka_event_error(ev.get())) {
    const char* why = rd_kafka_event_error_string(ev.get());
    throw std::runtime_error("Kafka " + std::string(request) + " failed: " + (why ? why : "unexpected event"));
  }
  return ev;
}

rd_kafka_resp_err_t fetch_metadata(rd_kafka_t* rk, rd_kafka_topic_t* topic, int timeout_ms, MetadataHandle& out) {
  const rd_kafka_metadata_t* md = nullptr;
  const auto err = rd_kafka_metadata(rk, 0, topic, &md, timeout_ms);
  out.reset(err == RD_KAFKA_RESP_ERR_NO_ERROR ? md : nullptr);
  return err;
}

void log_to_spdlog(const rd_kafka_t*, int level, const char* facility, const char* message) {
  broker::guarded("kafka log callback", [&] {
    // syslog levels: 3 error, 4 warning, 5 and above notice/info/debug.
    if (level <= 3) {
      spdlog::error("librdkafka {}: {}", facility, message);
    } else if (level <= 4) {
      spdlog::warn("librdkafka {}: {}", facility, message);
    } else {
      spdlog::debug("librdkafka {}: {}", facility, message);
    }
  });
}

}  // namespace pix::kafka::detail
