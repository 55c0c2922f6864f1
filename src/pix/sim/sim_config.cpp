#include "pix/sim/sim_config.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace pix::sim {

namespace {

constexpr int kExitBadArguments = 2;

constexpr const char* kSeedExampleBody =
    R"({"topic":"pix.payment.requested","value":{"transactionId":"12345","amount":100,"payer":"alice","receiver":"bob"}})";

/// Values that parse but make no sense (together); the message names the flag.
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

/// How to talk to the servers (TLS trust, extra headers): shared by every command.
struct ClientFlags {
  std::string ca;
  std::vector<std::string> headers;
  std::string bearer_file;
};

const CLI::Validator kDurationValidator(
    [](std::string& text) { return parse_duration(text) ? std::string() : "not a duration (10s, 500ms, 2m): " + text; },
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
  // NonNegativeNumber: CLI11 2.1 reads "-1" into an unsigned as 2^64 - 1, an endless run.
  cmd.add_option("--count", f.count, "requests to send (then stop; no time limit unless --duration is given)")
      ->check(CLI::NonNegativeNumber);
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
void apply_client_flags(const ClientFlags& f, LoadOptions& o) {
  o.ca_file = f.ca;
  for (const auto& line : f.headers) {
    std::string error;
    auto header = parse_header_line(line, error);
    if (!header) throw BadArguments("--header: " + error);
    o.headers.push_back(std::move(*header));
  }
  if (f.bearer_file.empty()) return;
  auto is_authorization = [](const Header& h) {
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

HttpUrl parse_url_or_throw(const std::string& flag, const std::string& text) {
  std::string error;
  auto url = parse_http_url(text, error);
  if (!url) throw BadArguments(flag + ": " + error);
  return *url;
}

LoadOptions load_options(const RunFlags& f, std::vector<Endpoint> endpoints) {
  LoadOptions o;
  o.endpoints = std::move(endpoints);
  o.mode = *f.rate_option ? LoadOptions::Mode::kOpenLoop : LoadOptions::Mode::kClosedLoop;
  o.rate = f.rate;
  o.concurrency = f.concurrency;
  o.max_connections = std::max(f.max_connections, f.concurrency);
  o.count = f.count;
  // --count alone sends that many, however long it takes; with --duration, whichever ends first.
  // --duration 0 without --count runs until Ctrl-C or SIGTERM (a simulator left running, as in
  // docker compose's `sim` profile), then prints the summary as usual.
  o.duration =
      (f.count > 0 && f.duration_option->count() == 0) ? std::chrono::nanoseconds(0) : *parse_duration(f.duration);
  o.timeout = std::chrono::milliseconds(f.timeout_ms);
  o.io_threads = f.threads;
  o.progress = !f.no_progress;
  return o;
}

}  // namespace

std::variant<SimConfig, ParseExit> parse_sim_config(int argc, const char* const* argv) {
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
  SeedCommand seed_command;
  std::uint64_t seed_count = 0;
  std::uint64_t seed_seed = 0;
  int seed_timeout_ms = 10000;
  auto* seed = app.add_subcommand("seed",
                                  "the seed's simulator: one of its five events every --interval, "
                                  "payments to api-kafka and the rest to api-rabbitmq; prints each answer");
  seed->add_option("--kafka-url", kafka_url, "api-kafka")->capture_default_str();
  seed->add_option("--rabbit-url", rabbit_url, "api-rabbitmq")->capture_default_str();
  seed->add_option("--interval", seed_command.interval, "time between events")
      ->check(kDurationValidator)
      ->capture_default_str();
  seed->add_option("--count", seed_count, "events to send (0: until Ctrl-C)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  auto* seed_seed_opt = seed->add_option("--seed", seed_seed, "random seed for the choice of events (default: clock)");
  seed->add_option("--timeout-ms", seed_timeout_ms, "per request")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  add_client_flags(*seed, seed_client);

  RunFlags pay_flags;
  PaymentsCommand pay_command;
  PaymentOptions& pay = pay_command.payments;
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

  if (auto exit = util::parse_or_exit(app, argc, argv)) {
    // CLI11 has a code per kind of error; pix-sim's contract is 2 for any of them.
    if (exit->code != 0) exit->code = kExitBadArguments;
    return *exit;
  }

  SimConfig c;
  try {
    if (*load) {
      const auto url = parse_url_or_throw("--url", load_flags.url);
      c.load = load_options(load_flags, {url.endpoint});
      apply_client_flags(load_client, c.load);
      LoadCommand command;
      command.target = url.target;
      command.body = !body_file.empty() ? read_file("--body-file", body_file) : !body.empty() ? body : kSeedExampleBody;
      command.json = load_flags.json;
      c.command = std::move(command);
    } else if (*seed) {
      const auto kafka = parse_url_or_throw("--kafka-url", kafka_url);
      const auto rabbit = parse_url_or_throw("--rabbit-url", rabbit_url);
      const auto every = *parse_duration(seed_command.interval);
      if (every.count() <= 0) throw BadArguments("--interval must be positive");
      if (seed_seed_opt->count() > 0) seed_command.seed = seed_seed;
      seed_command.targets = {kafka.target, rabbit.target};
      c.load.endpoints = {kafka.endpoint, rabbit.endpoint};
      c.load.mode = LoadOptions::Mode::kOpenLoop;
      c.load.rate = 1e9 / static_cast<double>(every.count());
      c.load.concurrency = 1;
      c.load.duration = std::chrono::nanoseconds(0);
      c.load.count = seed_count;
      c.load.timeout = std::chrono::milliseconds(seed_timeout_ms);
      apply_client_flags(seed_client, c.load);
      c.command = std::move(seed_command);
    } else {
      const auto url = parse_url_or_throw("--url", pay_flags.url);
      if (url.target != "/kafka" && url.target != "/rabbit") {
        throw BadArguments("--url: payments go to /kafka or /rabbit, not " + url.target);
      }
      c.load = load_options(pay_flags, {url.endpoint});
      apply_client_flags(pay_client, c.load);
      pay.target = url.target;
      pay.idempotency_keys = !no_idempotency_keys;
      pay.night_aware = !no_night_aware;
      pay_command.json = pay_flags.json;
      c.command = std::move(pay_command);
    }
  } catch (const BadArguments& e) {
    return ParseExit{kExitBadArguments, "pix-sim: " + std::string(e.what()) + "\n"};
  }
  return c;
}

}  // namespace pix::sim
