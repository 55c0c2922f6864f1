// pix-sim: sends PIX traffic to the gateways (http or https) and measures it. `load` repeats one
// body at a rate or a concurrency; `seed` replays the seed project's simulator (an event every few
// seconds, answers printed); `payments` sends realistic payments between the simulator's accounts.
// Every mode takes --ca, --header and --bearer-file for a gateway that serves HTTPS and wants a
// bearer token.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "pix/sim/load_engine.hpp"
#include "pix/sim/load_report.hpp"
#include "pix/sim/payment_generator.hpp"
#include "pix/sim/seed_events.hpp"

namespace {

namespace sim = pix::sim;

constexpr int kExitClean = 0;
constexpr int kExitFailures = 1;
constexpr int kExitBadArguments = 2;

constexpr const char* kSeedExampleBody =
    R"({"topic":"pix.payment.requested","value":{"transactionId":"12345","amount":100,"payer":"alice","receiver":"bob"}})";

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int) {
  g_stop = true;
  // A second Ctrl-C ends the process at once, for when the requests in flight take too long.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

/// Thrown for arguments that parse but make no sense together; exit code 2.
struct BadArguments : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// How long and how hard to send: shared by `load` and `payments`.
struct RunFlags {
  std::string url;
  double rate = 0;
  int concurrency = 64;
  std::string duration = "10s";
  std::uint64_t count = 0;
  int timeout_ms = 10000;
  int max_connections = 1024;
  int threads = 1;
  bool json = false;
  bool no_progress = false;
  CLI::Option* rate_option = nullptr;
  CLI::Option* duration_option = nullptr;
};

/// How to talk to the servers (TLS trust, extra headers): shared by every mode.
struct ClientFlags {
  std::string ca;
  std::vector<std::string> headers;
  std::string bearer_file;
};

const CLI::Validator kDurationValidator(
    [](std::string& text) {
      return sim::parse_duration(text) ? std::string() : "not a duration (10s, 500ms, 2m): " + text;
    },
    "DURATION");

const CLI::Validator kPositiveRate(
    [](std::string& text) {
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      const bool ok = end != text.c_str() && *end == '\0' && std::isfinite(v) && v > 0;
      return ok ? std::string() : "must be a number of requests per second > 0: " + text;
    },
    "PER_SECOND");

void add_run_flags(CLI::App& cmd, RunFlags& f, const std::string& default_url) {
  f.url = default_url;
  cmd.add_option("--url", f.url, "where to POST")->capture_default_str();
  f.rate_option =
      cmd.add_option("--rate", f.rate, "open loop: requests per second (else closed loop)")->check(kPositiveRate);
  cmd.add_option("--concurrency", f.concurrency,
                 "closed loop: requests in flight; open loop: connections opened before the start")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  f.duration_option =
      cmd.add_option("--duration", f.duration, "how long to send (10s, 500ms, 2m); 0 = until Ctrl-C or SIGTERM")
          ->check(kDurationValidator)
          ->capture_default_str();
  cmd.add_option("--count", f.count, "requests to send (then stop; no time limit unless --duration is given)");
  cmd.add_option("--timeout-ms", f.timeout_ms, "per request, connect included")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  cmd.add_option("--max-connections", f.max_connections,
                 "open loop: most connections per endpoint while requests wait for one")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd.add_option("--threads", f.threads, "I/O threads, each with its share of the connections and the rate")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  cmd.add_flag("--json", f.json, "print the result as JSON (latencies in microseconds)");
  cmd.add_flag("--no-progress", f.no_progress, "no live line on stderr");
}

void add_client_flags(CLI::App& cmd, ClientFlags& f) {
  cmd.add_option("--ca", f.ca,
                 "CA certificates (PEM) an https server's certificate must chain to (default: the system's)")
      ->envname("PIX_SIM_CA")
      ->check(CLI::ExistingFile);
  cmd.add_option("--header", f.headers, "'Name: value' sent with every request (repeatable)")->allow_extra_args(false);
  cmd.add_option("--bearer-file", f.bearer_file,
                 "send 'Authorization: Bearer <token>' with the token read from this file (not shown in ps)")
      ->check(CLI::ExistingFile);
}

std::string read_file(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BadArguments(flag + ": cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The TLS trust and the headers of every request; BadArguments for a header without ':' or a
/// bearer file that holds no single token.
void apply_client_flags(const ClientFlags& f, sim::LoadOptions& o) {
  o.ca_file = f.ca;
  for (const auto& line : f.headers) {
    std::string error;
    auto header = sim::parse_header_line(line, error);
    if (!header) throw BadArguments("--header: " + error);
    o.headers.push_back(std::move(*header));
  }
  if (f.bearer_file.empty()) return;
  auto is_authorization = [](const sim::Header& h) {
    constexpr std::string_view kName = "authorization";
    return std::equal(h.first.begin(), h.first.end(), kName.begin(), kName.end(),
                      [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
  };
  if (std::any_of(o.headers.begin(), o.headers.end(), is_authorization)) {
    throw BadArguments("--bearer-file and --header 'Authorization: ...' both set the Authorization header");
  }
  std::string token = read_file("--bearer-file", f.bearer_file);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) token.erase(0, 1);
  if (token.empty()) throw BadArguments("--bearer-file: " + f.bearer_file + " is empty");
  if (std::any_of(token.begin(), token.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); })) {
    throw BadArguments("--bearer-file: " + f.bearer_file + " holds more than one word; it should hold the token only");
  }
  o.headers.emplace_back("Authorization", "Bearer " + token);
}

sim::HttpUrl parse_url_or_throw(const std::string& flag, const std::string& text) {
  std::string error;
  auto url = sim::parse_http_url(text, error);
  if (!url) throw BadArguments(flag + ": " + error);
  return *url;
}

sim::LoadOptions load_options(const RunFlags& f, std::vector<sim::Endpoint> endpoints) {
  sim::LoadOptions o;
  o.endpoints = std::move(endpoints);
  o.mode = *f.rate_option ? sim::LoadOptions::Mode::kOpenLoop : sim::LoadOptions::Mode::kClosedLoop;
  o.rate = f.rate;
  o.concurrency = f.concurrency;
  o.max_connections = std::max(f.max_connections, f.concurrency);
  o.count = f.count;
  // --count alone sends that many, however long it takes; with --duration, whichever ends first.
  // --duration 0 without --count runs until Ctrl-C or SIGTERM (a simulator left running, as in
  // docker compose's `sim` profile), then prints the summary as usual.
  o.duration =
      (f.count > 0 && f.duration_option->count() == 0) ? std::chrono::nanoseconds(0) : *sim::parse_duration(f.duration);
  o.timeout = std::chrono::milliseconds(f.timeout_ms);
  o.io_threads = f.threads;
  o.progress = !f.no_progress;
  o.stop = &g_stop;
  return o;
}

int finish(const sim::LoadResult& r, bool json) {
  std::fputs(json ? (sim::render_json(r) + "\n").c_str() : sim::render_table(r).c_str(), stdout);
  std::fflush(stdout);
  return r.transport_errors() == 0 && r.server_errors() == 0 ? kExitClean : kExitFailures;
}

std::string utc_time(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // room for any int the compiler imagines in each field
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

/// Every request goes to the one URL given, whatever endpoint the source meant.
sim::RequestSource to_single_endpoint(sim::RequestSource inner, std::string target) {
  return [inner = std::move(inner), target = std::move(target)](std::uint64_t seq) {
    sim::RequestSpec spec = inner(seq);
    spec.endpoint = 0;
    spec.target = target;
    return spec;
  };
}

/// The generator keeps payers under anti-fraud's velocity rule only up to a volume per 10 minutes;
/// past it, rejections the user did not ask for appear, so say so before sending.
void warn_if_over_velocity_bound(const sim::LoadOptions& o, std::size_t population) {
  const double window_s = 600;
  double planned = 0;
  if (o.mode == sim::LoadOptions::Mode::kOpenLoop) {
    const double seconds = o.duration.count() > 0 ? std::chrono::duration<double>(o.duration).count() : window_s;
    planned = o.rate * std::min(seconds, window_s);
    if (o.count > 0) planned = std::min(planned, static_cast<double>(o.count));
  } else if (o.count > 0) {
    planned = static_cast<double>(o.count);
  }
  const auto safe = static_cast<double>(sim::velocity_safe_requests(population));
  if (planned > safe) {
    std::fprintf(stderr,
                 "warning: about %.0f payments within 10 minutes, over the %.0f that keep %zu payers under the "
                 "velocity rule: expect AM02 rejections (raise --population, and settlement's)\n",
                 planned, safe, population);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pix-sim: PIX traffic for the gateways, measured (latency from the intended send time in open loop)"};
  app.require_subcommand(1);

  RunFlags load_flags;
  ClientFlags load_client, seed_client, pay_client;
  std::string body, body_file;
  auto* load = app.add_subcommand("load", "send one JSON body over and over; print status codes and latency");
  add_run_flags(*load, load_flags, "http://127.0.0.1:5000/kafka");
  add_client_flags(*load, load_client);
  auto* body_opt = load->add_option("--body", body, "the JSON body (default: the seed's curl example)");
  load->add_option("--body-file", body_file, "read the JSON body from this file")->excludes(body_opt);

  std::string kafka_url = "http://127.0.0.1:5000/kafka", rabbit_url = "http://127.0.0.1:5001/rabbit";
  std::string interval = "5s";
  std::uint64_t seed_count = 0;
  std::uint64_t seed_seed = 0;
  int seed_timeout_ms = 10000;
  auto* seed = app.add_subcommand("seed",
                                  "the seed's simulator: one of its five events every --interval, "
                                  "payments to api-kafka and the rest to api-rabbitmq; prints each answer");
  seed->add_option("--kafka-url", kafka_url, "api-kafka")->capture_default_str();
  seed->add_option("--rabbit-url", rabbit_url, "api-rabbitmq")->capture_default_str();
  seed->add_option("--interval", interval, "time between events")->check(kDurationValidator)->capture_default_str();
  seed->add_option("--count", seed_count, "events to send (0: until Ctrl-C)")->capture_default_str();
  auto* seed_seed_opt = seed->add_option("--seed", seed_seed, "random seed for the choice of events (default: clock)");
  seed->add_option("--timeout-ms", seed_timeout_ms, "per request")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  add_client_flags(*seed, seed_client);

  RunFlags pay_flags;
  sim::PaymentOptions pay;
  bool no_idempotency_keys = false, no_night_aware = false;
  auto* payments = app.add_subcommand("payments", "realistic payments between the simulator's accounts pix-0001...");
  add_run_flags(*payments, pay_flags, "http://127.0.0.1:5000/kafka");
  add_client_flags(*payments, pay_client);
  payments->add_option("--population", pay.population, "accounts pix-0001... (settlement's --population)")
      ->check(CLI::Range(2, 10000000))
      ->capture_default_str();
  payments->add_option("--seed", pay.seed, "drives keys and every choice")->capture_default_str();
  payments->add_option("--rule-breaking-share", pay.rule_breaking_share, "share of payments that break a rule")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  payments->add_option("--retry-share", pay.retry_share, "share of requests repeating an earlier one (client retry)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  payments->add_flag("--no-idempotency-keys", no_idempotency_keys, "send no Idempotency-Key header");
  payments->add_option("--run-id", pay.run_id, "prefix of transactionIds and keys (default: sim<seed>-<unix time>)");
  payments->add_flag("--no-night-aware", no_night_aware, "do not keep payments under the night limit at night");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitClean : kExitBadArguments;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  try {
    if (*load) {
      const auto url = parse_url_or_throw("--url", load_flags.url);
      auto options = load_options(load_flags, {url.endpoint});
      apply_client_flags(load_client, options);
      const std::string payload = !body_file.empty() ? read_file("--body-file", body_file)
                                  : !body.empty()    ? body
                                                     : kSeedExampleBody;
      const sim::RequestSpec spec{0, url.target, payload, {}, "load"};
      return finish(sim::run_load(options, [spec](std::uint64_t) { return spec; }), load_flags.json);
    }

    if (*seed) {
      const auto kafka = parse_url_or_throw("--kafka-url", kafka_url);
      const auto rabbit = parse_url_or_throw("--rabbit-url", rabbit_url);
      const auto every = *sim::parse_duration(interval);
      if (every.count() <= 0) throw BadArguments("--interval must be positive");
      if (seed_seed_opt->count() == 0) {
        seed_seed = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
      }
      sim::LoadOptions o;
      o.endpoints = {kafka.endpoint, rabbit.endpoint};
      o.mode = sim::LoadOptions::Mode::kOpenLoop;
      o.rate = 1e9 / static_cast<double>(every.count());
      o.concurrency = 1;
      o.duration = std::chrono::nanoseconds(0);
      o.count = seed_count;
      o.timeout = std::chrono::milliseconds(seed_timeout_ms);
      o.stop = &g_stop;
      apply_client_flags(seed_client, o);
      o.on_answer = [](const sim::Answer& a, std::string_view answer_body) {
        const std::string status =
            a.error ? "error " + std::string(sim::to_string(*a.error)) : std::to_string(a.status);
        std::printf("%s  %-22s  %s  %.*s\n", utc_time(a.at).c_str(), a.label.c_str(), status.c_str(),
                    static_cast<int>(answer_body.size()), answer_body.data());
        std::fflush(stdout);
      };
      auto source = [inner = sim::make_seed_source(seed_seed),
                     targets = std::array<std::string, 2>{kafka.target, rabbit.target}](std::uint64_t n) {
        sim::RequestSpec spec = inner(n);
        spec.target = targets.at(spec.endpoint);
        return spec;
      };
      std::fprintf(stderr, "sending one of the seed's five events every %s (seed %llu); Ctrl-C to stop\n",
                   interval.c_str(), static_cast<unsigned long long>(seed_seed));
      const auto r = sim::run_load(o, source);
      std::fprintf(stderr, "%llu sent, %llu answered 2xx, %llu other answers, %llu without an answer\n",
                   static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.ok()),
                   static_cast<unsigned long long>(r.completed - r.ok()),
                   static_cast<unsigned long long>(r.transport_errors()));
      return r.transport_errors() == 0 && r.server_errors() == 0 ? kExitClean : kExitFailures;
    }

    if (*payments) {
      const auto url = parse_url_or_throw("--url", pay_flags.url);
      if (url.target != "/kafka" && url.target != "/rabbit") {
        throw BadArguments("--url: payments go to /kafka or /rabbit, not " + url.target);
      }
      auto options = load_options(pay_flags, {url.endpoint});
      apply_client_flags(pay_client, options);
      pay.target = url.target;
      pay.idempotency_keys = !no_idempotency_keys;
      pay.night_aware = !no_night_aware;
      if (pay.run_id.empty()) {
        // Two runs with the same keys would be answered as idempotent replays: each run its own.
        const auto now =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
        pay.run_id = sim::default_run_id(pay.seed) + "-" + std::to_string(now.count());
      }
      std::fprintf(stderr, "%s\n", sim::describe(pay).c_str());
      warn_if_over_velocity_bound(options, pay.population);
      auto source = to_single_endpoint(sim::make_payment_source(pay), url.target);
      return finish(sim::run_load(options, std::move(source)), pay_flags.json);
    }
  } catch (const BadArguments& e) {
    std::fprintf(stderr, "pix-sim: %s\n", e.what());
    return kExitBadArguments;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "pix-sim: %s\n", e.what());
    return kExitBadArguments;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pix-sim: %s\n", e.what());
    return kExitFailures;
  }
  return kExitBadArguments;
}
