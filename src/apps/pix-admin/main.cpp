// pix-admin: declares the Kafka topics and the RabbitMQ topology, idempotently.
#include "pix/util/cli.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "pix/amqp/client_flags.hpp"
#include "pix/amqp/topology.hpp"
#include "pix/amqp/url.hpp"
#include "pix/audit/audit_anchor.hpp"
#include "pix/domain/topics.hpp"
#include "pix/http/client.hpp"
#include "pix/kafka/acls.hpp"
#include "pix/kafka/admin.hpp"
#include "pix/kafka/client_flags.hpp"
#include "pix/kafka/partition_reader.hpp"
#include "pix/saga/handlers.hpp"
#include "pix/saga/report.hpp"
#include "pix/security/decision_signature.hpp"
#include "pix/telemetry/trace_view.hpp"

namespace {

/// Writes a new decision key for `stage` to `path` (0600, never over an existing file).
int write_decision_key(const std::string& stage, const std::string& path) {
  const std::string doc = pix::security::generate_decision_key_json(stage);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "pix-admin: %s: %s%s\n", path.c_str(), std::strerror(errno),
                 errno == EEXIST ? " (a key is never overwritten: remove it first to replace it)" : "");
    return 1;
  }
  const bool written = ::write(fd, doc.data(), doc.size()) == static_cast<ssize_t>(doc.size());
  if (::close(fd) != 0 || !written) {
    std::fprintf(stderr, "pix-admin: %s: write failed\n", path.c_str());
    ::unlink(path.c_str());
    return 1;
  }
  std::printf("%s: decision key %s of stage %s\n", path.c_str(), pix::security::parse_decision_key(doc).kid.c_str(),
              stage.c_str());
  return 0;
}

/// @brief Where verify-audit reads the chain's anchor from: the cluster and the topic.
struct AnchorSource {
  std::string bootstrap;
  std::map<std::string, std::string> properties;  ///< client_properties() of the Kafka flags
  std::string topic;                              ///< <prefix>pix.audit.log
};

/// The anchor announced on `source.topic`: of the last record of each partition, the one with the
/// highest seq (records that announce nothing are skipped). Nullopt when nothing is announced.
/// Throws std::runtime_error naming the topic when it cannot be read (unreachable, not
/// authorized, no such topic): "could not read" must never pass for "nothing announced".
std::optional<pix::audit::AuditAnchor> read_anchor(const AnchorSource& source) {
  pix::kafka::ReaderOptions options;
  options.bootstrap_servers = source.bootstrap;
  options.client_id = "pix-admin";
  options.extra = source.properties;
  pix::kafka::PartitionReader reader(std::move(options));
  std::optional<pix::audit::AuditAnchor> best;
  const std::int32_t partitions = reader.partition_count(source.topic);
  for (std::int32_t p = 0; p < partitions; ++p) {
    const pix::kafka::Watermarks w = reader.watermarks(source.topic, p);
    if (w.high <= w.low) continue;  // empty, or retention dropped everything
    reader.read(source.topic, p, w.high - 1, w.high, [&](const pix::kafka::ConsumedRecord& r) {
      auto anchor = pix::audit::parse_anchor(r.value);
      if (!anchor) return;
      anchor->origin =
          source.topic + " (partition " + std::to_string(r.partition) + ", offset " + std::to_string(r.offset) + ")";
      if (!best || anchor->seq > best->seq) best = std::move(anchor);
    });
  }
  return best;
}

/// verify-audit: walks the chain and, given `anchor_source`, checks its tail against what the
/// auditor announced. Returns 0 (intact), 1 (the anchor could not be read) or 3 (broken,
/// truncated or rewritten); a store that cannot be opened throws.
int verify_audit(const std::string& audit_db, const std::optional<AnchorSource>& anchor_source) {
  // The anchor before the store: the auditor appends an entry before it announces it, so the
  // store read afterwards holds every entry announced so far, even while the auditor runs.
  std::optional<pix::audit::AuditAnchor> anchor;
  if (anchor_source) {
    try {
      anchor = read_anchor(*anchor_source);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pix-admin: cannot read the audit chain's anchor on %s, the tail is unchecked: %s\n",
                   anchor_source->topic.c_str(), e.what());
      return 1;
    }
  }
  pix::audit::AuditStore store(audit_db);
  const auto r = store.verify([](std::size_t done) { std::fprintf(stderr, "  ... %zu entries verified\n", done); });
  if (!r.ok) {
    std::printf("audit chain BROKEN at seq %lld: %s (%zu entries before it are intact)\n",
                static_cast<long long>(r.first_broken_seq.value_or(-1)), r.reason.c_str(), r.entries);
    return 3;
  }
  if (!anchor_source) {
    std::printf("audit chain OK: %zu entries\n", r.entries);
    return 0;
  }
  const pix::audit::AnchorVerdict v = pix::audit::check_anchor(store, anchor);
  switch (v.status) {
    case pix::audit::AnchorStatus::kNoAnchor:
      std::printf("audit chain OK: %zu entries; no anchor yet: %s announces no entry (checked as a file only)\n",
                  r.entries, anchor_source->topic.c_str());
      return 0;
    case pix::audit::AnchorStatus::kReached:
      std::printf("audit chain OK: %zu entries, anchored: %s\n", r.entries, v.detail.c_str());
      return 0;
    case pix::audit::AnchorStatus::kTruncated:
      std::printf("audit chain TRUNCATED: %s (its %zu entries are intact)\n", v.detail.c_str(), r.entries);
      return 3;
    case pix::audit::AnchorStatus::kDiverged:
      std::printf("audit chain REWRITTEN: %s\n", v.detail.c_str());
      return 3;
  }
  return 3;
}

/// @brief `pix-admin trace`'s flags.
struct TraceOptions {
  std::string id;  ///< a trace id, or a PIX transactionId
  std::string jaeger = "http://127.0.0.1:16686";
  std::string lookback = "24h";
  int width = 30;
  bool json = false;
};

/// @brief Jaeger's HTTP query API: where it is, as parsed and as the user wrote it.
struct JaegerApi {
  pix::http::Url base;  ///< target: the query API's base path, without a trailing '/'
  std::string text;     ///< the base URL for messages, without a trailing '/'

  std::string url_of(const std::string& target) const { return text + target; }
};

/// A trace answer can be a whole saga's spans: far more than a JWKS document.
constexpr std::size_t kMaxTraceAnswerBytes = 32u << 20;
constexpr std::string_view kNotFoundHint =
    "  (spans reach Jaeger a few seconds after the request, and only from services run with tracing enabled:\n"
    "  OTEL_EXPORTER_OTLP_ENDPOINT set)\n";

const CLI::Validator kJaegerUrl(
    [](std::string& text) {
      std::string error;
      if (!pix::http::parse_url(text, error)) return "not an http(s) URL: " + error;
      return text.find('?') == std::string::npos ? std::string() : "the query API's base URL takes no query: " + text;
    },
    "URL");

const CLI::Validator kLookback(
    [](std::string& text) {
      return pix::telemetry::parse_lookback(text) ? std::string()
                                                  : "not a lookback (a count and m, h, d or w, at most 52w): " + text;
    },
    "DURATION");

CLI::App* add_trace_command(CLI::App& app, TraceOptions& o) {
  auto* cmd = app.add_subcommand("trace", "print one payment's trace from Jaeger as a waterfall");
  cmd->add_option("id", o.id,
                  "a trace id (32 lowercase hex), or a PIX transactionId: the traces whose spans carry it as "
                  "pix.transaction_id, searched in every service")
      ->required();
  cmd->add_option("--jaeger", o.jaeger, "Jaeger's HTTP query API")
      ->envname("PIX_JAEGER_URL")
      ->check(kJaegerUrl)
      ->capture_default_str();
  cmd->add_option("--lookback", o.lookback, "how far back a transactionId is searched (30m, 1h, 24h, 2d, 1w)")
      ->check(kLookback)
      ->capture_default_str();
  cmd->add_option("--width", o.width, "cells of the timeline bar")->check(CLI::Range(10, 200))->capture_default_str();
  cmd->add_flag("--json", o.json, "print Jaeger's JSON answer instead of the waterfall");
  return cmd;
}

JaegerApi jaeger_api(const std::string& text) {
  std::string error;
  JaegerApi api{*pix::http::parse_url(text, error), text};  // kJaegerUrl has accepted it
  while (!api.text.empty() && api.text.back() == '/') api.text.pop_back();
  while (!api.base.target.empty() && api.base.target.back() == '/') api.base.target.pop_back();
  return api;
}

pix::http::ClientResponse jaeger_get(const JaegerApi& api, const std::string& target) {
  pix::http::ClientRequest request;
  request.url = api.base;
  request.url.target = api.base.target + target;
  request.headers = {{"Accept", "application/json"}};
  request.max_response_bytes = kMaxTraceAnswerBytes;
  return pix::http::send_request(request);
}

/// Exit 2: Jaeger gave no answer, or one that is not a success.
int backend_error(const JaegerApi& api, const std::string& target, const pix::http::ClientResponse& r) {
  std::string why = r.error;
  if (r.status != 0) {
    const auto reported = pix::telemetry::parse_jaeger_traces(r.body).error;
    why = "HTTP " + std::to_string(r.status) + ": " + (reported.empty() ? r.body.substr(0, 200) : reported);
  }
  std::fprintf(stderr, "pix-admin: Jaeger at %s: %s\n", api.url_of(target).c_str(), why.c_str());
  return 2;
}

void print_waterfalls(const std::vector<pix::telemetry::Trace>& traces, const TraceOptions& o) {
  for (std::size_t i = 0; i < traces.size(); ++i) {
    std::fputs(((i ? "\n" : "") + pix::telemetry::render_waterfall(traces[i], {o.width})).c_str(), stdout);
  }
}

int show_trace(const JaegerApi& api, const TraceOptions& o) {
  const std::string target = "/api/traces/" + o.id;
  const auto r = jaeger_get(api, target);
  if (r.status != 200 && r.status != 404) return backend_error(api, target, r);
  const auto answer = pix::telemetry::parse_jaeger_traces(r.body);
  if (answer.traces.empty()) {
    if (r.status == 200 && !answer.error.empty()) return backend_error(api, target, r);
    std::fprintf(stderr, "pix-admin: Jaeger at %s has no trace %s\n%s", api.text.c_str(), o.id.c_str(),
                 kNotFoundHint.data());
    return 1;
  }
  if (o.json) {
    std::printf("%s\n", r.body.c_str());
  } else {
    print_waterfalls(answer.traces, o);
  }
  return 0;
}

/// The services Jaeger has spans of, but its own; nullopt (reported) when it cannot say.
std::optional<std::vector<std::string>> traced_services(const JaegerApi& api) {
  const std::string target = "/api/services";
  const auto r = jaeger_get(api, target);
  if (r.status != 200) {
    backend_error(api, target, r);
    return std::nullopt;
  }
  std::string error;
  auto services = pix::telemetry::parse_jaeger_services(r.body, error);
  if (!services) {
    std::fprintf(stderr, "pix-admin: Jaeger at %s: %s\n", api.url_of(target).c_str(), error.c_str());
    return std::nullopt;
  }
  std::erase_if(*services, [](const std::string& s) { return s == "jaeger" || s.starts_with("jaeger-"); });
  return services;
}

/// @brief What searching every service for a transaction found, and how many searches failed.
struct TransactionSearch {
  std::vector<pix::telemetry::Trace> traces;  ///< distinct, most recent first
  int failures = 0;
};

TransactionSearch search_transaction(const JaegerApi& api, const std::vector<std::string>& services,
                                     const TraceOptions& o) {
  const auto now_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  TransactionSearch out;
  for (const auto& service : services) {
    const auto target = pix::telemetry::transaction_search_target(service, o.id, o.lookback, now_us);
    const auto r = jaeger_get(api, target);
    auto answer = r.status == 200 ? pix::telemetry::parse_jaeger_traces(r.body) : pix::telemetry::JaegerTraces{};
    if (r.status != 200 || (answer.traces.empty() && !answer.error.empty())) {
      backend_error(api, target, r);
      ++out.failures;
      continue;
    }
    std::move(answer.traces.begin(), answer.traces.end(), std::back_inserter(out.traces));
  }
  out.traces = pix::telemetry::distinct_most_recent_first(std::move(out.traces));
  return out;
}

int show_transaction(const JaegerApi& api, const TraceOptions& o) {
  const auto services = traced_services(api);
  if (!services) return 2;
  const auto found = search_transaction(api, *services, o);
  if (found.traces.empty()) {
    if (found.failures > 0) return 2;
    std::string names;
    for (const auto& s : *services) names += (names.empty() ? "" : ", ") + s;
    std::fprintf(stderr,
                 "pix-admin: no trace with pix.transaction_id=%s in the last %s among the %zu services %s knows%s\n%s",
                 o.id.c_str(), o.lookback.c_str(), services->size(), api.text.c_str(),
                 names.empty() ? "" : (" (" + names + ")").c_str(), kNotFoundHint.data());
    return 1;
  }
  const std::size_t n = found.traces.size();
  std::fprintf(o.json ? stderr : stdout,
               "%zu trace%s with pix.transaction_id=%s in the last %s (most recent first)\n%s", n, n == 1 ? "" : "s",
               o.id.c_str(), o.lookback.c_str(), o.json ? "" : "\n");
  if (o.json) {
    std::printf("%s\n", pix::telemetry::jaeger_answer_json(found.traces).c_str());
  } else {
    print_waterfalls(found.traces, o);
  }
  if (found.failures > 0) {
    std::fprintf(stderr, "pix-admin: %d of %zu services could not be searched: there may be more traces\n",
                 found.failures, services->size());
  }
  return 0;
}

/// trace: 0 printed at least one trace, 1 none found, 2 Jaeger unreachable or failing.
int run_trace(const TraceOptions& o) {
  try {
    const JaegerApi api = jaeger_api(o.jaeger);
    return pix::telemetry::is_trace_id(o.id) ? show_trace(api, o) : show_transaction(api, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pix-admin: trace: %s\n", e.what());
    return 2;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pix-admin: declares the PIX topology on Kafka and RabbitMQ (safe to run again)"};
  app.require_subcommand(1);

  pix::kafka::ClientFlags kafka_flags;
  std::string topic_prefix;
  pix::amqp::ClientFlags rabbit_flags;
  std::string exchange = "pix";
  int partitions = 3;
  int replication = -1;
  bool skip_kafka = false, skip_rabbit = false;

  auto* topology = app.add_subcommand("topology", "create the five topics and the `pix` exchange with its queues");
  pix::kafka::add_client_flags(*topology, kafka_flags);
  pix::amqp::add_client_flags(*topology, rabbit_flags);
  topology->add_option("--exchange", exchange, "RabbitMQ exchange")->envname("PIX_EXCHANGE")->capture_default_str();
  topology->add_option("--partitions", partitions, "partitions per topic")
      ->envname("PIX_TOPIC_PARTITIONS")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  topology->add_option("--replication-factor", replication, "replicas per partition (-1: min(3, brokers))")
      ->envname("PIX_TOPIC_REPLICATION")
      ->capture_default_str();
  pix::util::add_topic_prefix_option(*topology, topic_prefix);
  std::string queue_prefix;
  bool remove = false;
  topology->add_option("--queue-prefix", queue_prefix, "prefix of the RabbitMQ queue names (an isolated copy)")
      ->envname("PIX_QUEUE_PREFIX");
  topology->add_flag("--delete", remove, "delete these topics, exchanges and queues instead (their data too)");
  bool acls = false;
  topology
      ->add_flag("--kafka-acls", acls,
                 "also declare each component's least-privilege ACLs (a cluster with an authorizer; "
                 "see README Security)")
      ->envname("PIX_KAFKA_ACLS");
  topology->add_flag("--skip-kafka", skip_kafka, "leave Kafka alone");
  topology->add_flag("--skip-rabbit", skip_rabbit, "leave RabbitMQ alone");

  std::string audit_db = "audit.db", ledger_db;
  bool as_json = false;
  auto* report = app.add_subcommand("report",
                                    "summary of the saga: counts per stage, rejections by reason, "
                                    "balances conserved, audit chain valid");
  report->add_option("--audit-db", audit_db, "the auditor's store")->envname("PIX_AUDIT_DB")->capture_default_str();
  report->add_option("--ledger-db", ledger_db, "the settlement ledger (optional)")->envname("PIX_LEDGER_DB");
  report->add_flag("--json", as_json, "print JSON");
  auto* verify = app.add_subcommand("verify-audit",
                                    "re-walk the audit hash chain; report the first broken link (and, with "
                                    "--anchor-kafka, a tail cut off)");
  verify->add_option("--audit-db", audit_db, "the auditor's store")->envname("PIX_AUDIT_DB")->capture_default_str();
  bool anchor_kafka = false;
  verify->add_flag("--anchor-kafka", anchor_kafka,
                   "also check the chain's tail against the entries the auditor announced on pix.audit.log "
                   "(exit 3 if cut off or rewritten, 1 if the topic cannot be read)");
  pix::kafka::add_client_flags(*verify, kafka_flags);
  pix::util::add_topic_prefix_option(*verify, topic_prefix);

  std::string key_stage, key_out;
  auto* decision_key = app.add_subcommand(
      "decision-key", "write a new HMAC key a saga stage signs its decisions with (0600; never overwrites)");
  decision_key->add_option("--stage", key_stage, "the stage whose decisions it signs")
      ->required()
      ->check(CLI::IsMember({"antifraud", "settlement"}));
  decision_key->add_option("--out", key_out, "the key file to create")->required();

  TraceOptions trace_options;
  auto* trace = add_trace_command(app, trace_options);

  CLI11_PARSE(app, argc, argv);

  if (*trace) return run_trace(trace_options);
  try {
    if (*decision_key) return write_decision_key(key_stage, key_out);
    if (*verify) {
      std::optional<AnchorSource> anchor_source;
      if (anchor_kafka) {
        std::string option_error;
        auto properties = pix::kafka::client_properties(kafka_flags, option_error);
        if (!properties) {
          std::fprintf(stderr, "pix-admin: %s\n", option_error.c_str());
          return 2;
        }
        anchor_source =
            AnchorSource{kafka_flags.bootstrap, std::move(*properties),
                         topic_prefix + std::string(pix::domain::topic_name(pix::domain::Topic::kAuditLog))};
      }
      return verify_audit(audit_db, anchor_source);
    }
    if (*report) {
      pix::audit::AuditStore store(audit_db);
      std::unique_ptr<pix::ledger::Ledger> ledger;
      if (!ledger_db.empty()) ledger = std::make_unique<pix::ledger::Ledger>(ledger_db);
      const auto r = pix::saga::build_report(store, ledger.get());
      std::fputs((as_json ? pix::saga::report_json(r) + "\n" : pix::saga::render_report(r)).c_str(), stdout);
      const bool ok = r.chain_valid && (!r.total_balance || *r.total_balance == 0);
      return ok ? 0 : 3;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pix-admin: %s\n", e.what());
    return 1;
  }

  int failures = 0;
  std::string option_error;
  const auto kafka_properties = pix::kafka::client_properties(kafka_flags, option_error);
  const std::string& bootstrap = kafka_flags.bootstrap;
  if (!kafka_properties) {
    std::fprintf(stderr, "pix-admin: %s\n", option_error.c_str());
    return 2;
  }
  if (!skip_kafka) {
    std::vector<std::string> names(pix::domain::kTopicNames.begin(), pix::domain::kTopicNames.end());
    names.emplace_back(pix::saga::kDeadLetterTopic);  // poison records from the saga stages
    std::vector<pix::kafka::TopicSpec> specs;
    for (const auto& name : names) {
      pix::kafka::TopicSpec s;
      s.name = topic_prefix + name;
      s.partitions = partitions;
      s.replication_factor = replication;
      specs.push_back(std::move(s));
    }
    try {
      if (remove) {
        std::vector<std::string> doomed;
        for (const auto& spec : specs) doomed.push_back(spec.name);
        pix::kafka::delete_topics(bootstrap, doomed, std::chrono::seconds(30), *kafka_properties);
        for (const auto& t : doomed) std::printf("kafka    topic     %-24s deleted\n", t.c_str());
        specs.clear();
      }
      for (const auto& o :
           specs.empty() ? std::vector<pix::kafka::TopicOutcome>{}
                         : pix::kafka::create_topics(bootstrap, specs, std::chrono::seconds(30), *kafka_properties)) {
        std::printf("kafka    topic     %-24s %s\n", o.name.c_str(), o.status.c_str());
        if (!o.ok) ++failures;
      }
      if (acls && !remove) {
        const auto rules = pix::kafka::pix_acls(topic_prefix, pix::saga::kDeadLetterTopic);
        for (const auto& o : pix::kafka::create_acls(bootstrap, rules, std::chrono::seconds(30), *kafka_properties)) {
          std::printf("kafka    acl       %-60s %s\n", o.rule.describe().c_str(), o.status.c_str());
          if (!o.ok) ++failures;
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kafka: %s\n", e.what());
      ++failures;
    }
  }
  if (!skip_rabbit) {
    auto url = pix::amqp::resolve_url(rabbit_flags);
    if (!url) {
      std::fprintf(stderr, "pix-admin: %s\n", url.error.c_str());
      return 2;
    }
    pix::amqp::TopologyOptions opts;
    opts.exchange = exchange;
    opts.queue_prefix = queue_prefix;
    if (remove) {
      if (auto r = pix::amqp::delete_topology(*url.url, opts); !r) {
        std::fprintf(stderr, "rabbitmq: %s\n", r.error.c_str());
        ++failures;
      } else {
        std::printf("rabbitmq exchange  %-24s deleted, with its queues\n", exchange.c_str());
      }
    } else if (auto r = pix::amqp::declare_topology(*url.url, opts); !r) {
      std::fprintf(stderr, "rabbitmq: %s\n", r.error.c_str());
      ++failures;
    } else {
      const auto names = pix::amqp::topology_names(opts);
      std::printf("rabbitmq exchange  %-24s topic, durable, alternate-exchange %s\n", names.exchange.c_str(),
                  names.unrouted.c_str());
      for (const auto& q : names.queues) std::printf("rabbitmq queue     %-24s quorum, bound by its name\n", q.c_str());
      std::printf("rabbitmq queue     %-24s quorum, catches unrouted keys\n", names.unrouted.c_str());
      std::printf("rabbitmq queue     %-24s quorum, dead letters via %s\n", names.dead_letter_queue.c_str(),
                  names.dead_letter_exchange.c_str());
    }
  }
  return failures == 0 ? 0 : 1;
}
