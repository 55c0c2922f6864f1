// pix-ceiling: what the client library reaches on its own. Publishes the gateway's event (same
// payload, same CloudEvents headers, same durability: idempotent acks=all / confirms, persistent,
// mandatory) at an open-loop rate, with no HTTP in front, and measures it like pix-sim measures
// the gateway: latency from each event's intended send time to its acknowledgement.
#include <sys/resource.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "pix/amqp/client_flags.hpp"
#include "pix/amqp/confirm_publisher.hpp"
#include "pix/broker/cloud_event.hpp"
#include "pix/kafka/client_flags.hpp"
#include "pix/kafka/producer.hpp"
#include "pix/sim/histogram.hpp"
#include "pix/sim/load_engine.hpp"
#include "pix/sim/load_report.hpp"
#include "pix/telemetry/logging.hpp"
#include "pix/util/cli.hpp"
#include "pix/util/random_id.hpp"

namespace {

using Clock = std::chrono::steady_clock;

long status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(line.find(':') + 1));
  }
  return 0;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pix-ceiling: the client library's own ceiling, measured like the gateway"};
  std::string broker = "kafka", exchange = "pix", duration = "10s";
  pix::kafka::ClientFlags kafka_flags;
  pix::amqp::ClientFlags rabbit_flags;
  double rate = 1000;
  bool as_json = false;
  app.add_option("--broker", broker, "kafka or rabbit")->check(CLI::IsMember({"kafka", "rabbit"}));
  pix::kafka::add_client_flags(app, kafka_flags);
  pix::amqp::add_client_flags(app, rabbit_flags);
  app.add_option("--exchange", exchange, "RabbitMQ exchange")->capture_default_str();
  std::string topic_prefix;
  pix::util::add_topic_prefix_option(app, topic_prefix);
  app.add_option("--rate", rate, "events per second (open loop)")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--duration", duration, "how long to send (10s, 500ms, 1m)")->capture_default_str();
  app.add_flag("--json", as_json, "print JSON");
  CLI11_PARSE(app, argc, argv);
  pix::telemetry::setup_logging("pix-ceiling", "warn", "text");

  std::unique_ptr<pix::broker::Publisher> publisher;
  std::function<bool()> ready;
  if (broker == "kafka") {
    std::string error;
    auto properties = pix::kafka::client_properties(kafka_flags, error);
    if (!properties) {
      std::fprintf(stderr, "pix-ceiling: %s\n", error.c_str());
      return 2;
    }
    pix::kafka::ProducerOptions o;  // the gateway's defaults: linger 5 ms, ack timeout 5 s
    o.bootstrap_servers = kafka_flags.bootstrap;
    o.extra = std::move(*properties);
    o.client_id = "pix-ceiling";
    auto p = std::make_unique<pix::kafka::KafkaPublisher>(o);
    auto* raw = p.get();
    ready = [raw] { return raw->broker_up(); };
    publisher = std::move(p);
  } else {
    auto url = pix::amqp::resolve_url(rabbit_flags);
    if (!url) {
      std::fprintf(stderr, "pix-ceiling: %s\n", url.error.c_str());
      return 2;
    }
    pix::amqp::ConfirmPublisher::Options o;
    o.url = *url.url;
    o.exchange = exchange;
    o.connection_name = "pix-ceiling";
    auto p = std::make_unique<pix::amqp::ConfirmPublisher>(o);
    auto* raw = p.get();
    ready = [raw] { return raw->connected(); };
    publisher = std::move(p);
  }
  for (int i = 0; i < 200 && !ready(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (!ready()) {
    std::fprintf(stderr, "pix-ceiling: the broker is not reachable\n");
    return 1;
  }
  const long idle_rss = status_kb("VmRSS");

  const std::string topic = broker == "kafka" ? topic_prefix + "pix.payment.requested" : "pix.notification.sent";
  const std::string payload = broker == "kafka"
                                  ? R"({"transactionId":"12345","amount":100,"payer":"alice","receiver":"bob"})"
                                  : R"({"transactionId":"12345","status":"notified"})";
  const auto binding = broker == "kafka" ? pix::broker::Binding::kKafka : pix::broker::Binding::kAmqp;

  std::mutex mu;
  pix::sim::LatencyHistogram latencies;
  std::map<std::string, std::uint64_t> failures;
  std::atomic<std::uint64_t> outstanding{0};
  const auto parsed = pix::sim::parse_duration(duration);
  if (!parsed) {
    std::fprintf(stderr, "--duration: not a duration: %s\n", duration.c_str());
    return 2;
  }
  const double seconds = std::chrono::duration<double>(*parsed).count();
  const auto total = static_cast<std::uint64_t>(rate * seconds);

  const double cpu0 = cpu_seconds();
  const auto start = Clock::now();
  for (std::uint64_t n = 0; n < total; ++n) {
    const auto due = start + std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * static_cast<double>(n) / rate));
    if (Clock::now() < due) std::this_thread::sleep_until(due);
    auto ev = pix::broker::make_cloud_event(binding, topic, "12345", payload, pix::util::uuid_v4(),
                                            "/pix-pubsub/ceiling", pix::telemetry::TraceContext::child_of(std::nullopt),
                                            pix::broker::now_epoch_ms());
    ++outstanding;
    publisher->publish(std::move(ev), [&, due](pix::broker::PublishResult r) {
      const auto latency = Clock::now() - due;
      std::lock_guard lock(mu);
      if (r.status == pix::broker::PublishStatus::kAcked) {
        latencies.record(std::chrono::duration_cast<std::chrono::nanoseconds>(latency));
      } else {
        ++failures[std::string(pix::broker::to_string(r.status))];
      }
      --outstanding;
    });
  }
  for (int i = 0; i < 300 && outstanding.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = cpu_seconds() - cpu0;

  std::lock_guard lock(mu);
  boost::json::object out;
  out["target"] = "ceiling-" + broker;
  out["sent"] = total;
  out["completed"] = latencies.count();
  out["elapsed_s"] = elapsed;
  out["status"] = {{"200", latencies.count()}};
  boost::json::object errs;
  for (const auto& [k, v] : failures) errs[k] = v;
  errs["unanswered"] = outstanding.load();
  out["errors"] = std::move(errs);
  out["latency_us"] = pix::sim::latency_json(latencies);
  out["cpu_s"] = cpu;
  out["peak_rss_kb"] = status_kb("VmHWM");
  out["idle_rss_kb"] = idle_rss;
  if (as_json) {
    std::printf("%s\n", boost::json::serialize(out).c_str());
  } else {
    auto ms = [&](double p) { return static_cast<double>(latencies.value_at_percentile(p).count()) / 1e6; };
    std::printf("%s: %llu/%llu acked in %.2fs; p50 %.2f ms p99 %.2f ms max %.2f ms; cpu %.2fs\n",
                out["target"].as_string().c_str(), static_cast<unsigned long long>(latencies.count()),
                static_cast<unsigned long long>(total), elapsed, ms(50), ms(99), ms(100), cpu);
  }
  publisher->drain(std::chrono::seconds(5));
  return failures.empty() && outstanding.load() == 0 ? 0 : 1;
}
