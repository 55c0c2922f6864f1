// pix-sim: sends PIX traffic to the gateways (http or https) and measures it. `load` repeats one
// body at a rate or a concurrency; `seed` replays the seed project's simulator (an event every few
// seconds, answers printed); `payments` sends realistic payments between the simulator's accounts.
// Every mode takes --ca, --header and --bearer-file for a gateway that serves HTTPS and wants a
// bearer token. The flags are parsed by pix::sim::parse_sim_config (src/pix/sim/sim_config.hpp).
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

#include "pix/sim/load_engine.hpp"
#include "pix/sim/load_report.hpp"
#include "pix/sim/payment_generator.hpp"
#include "pix/sim/seed_events.hpp"
#include "pix/sim/sim_config.hpp"

namespace {

namespace sim = pix::sim;

constexpr int kExitClean = 0;
constexpr int kExitFailures = 1;
constexpr int kExitBadArguments = 2;

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int) {
  g_stop = true;
  // A second Ctrl-C ends the process at once, for when the requests in flight take too long.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

int exit_code(const sim::LoadResult& r) {
  return r.transport_errors() == 0 && r.server_errors() == 0 ? kExitClean : kExitFailures;
}

int finish(const sim::LoadResult& r, bool json) {
  std::fputs(json ? (sim::render_json(r) + "\n").c_str() : sim::render_table(r).c_str(), stdout);
  std::fflush(stdout);
  return exit_code(r);
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

int run(const sim::LoadOptions& options, const sim::LoadCommand& load) {
  sim::RequestSpec spec{0, load.target, load.body, {}, "load"};
  return finish(sim::run_load(options, [spec](std::uint64_t) { return spec; }), load.json);
}

int run(sim::LoadOptions options, const sim::SeedCommand& seed) {
  const std::uint64_t random_seed =
      seed.seed.value_or(static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()));
  options.on_answer = [](const sim::Answer& a, std::string_view answer_body) {
    const std::string status = a.error ? "error " + std::string(sim::to_string(*a.error)) : std::to_string(a.status);
    std::printf("%s  %-22s  %s  %.*s\n", utc_time(a.at).c_str(), a.label.c_str(), status.c_str(),
                static_cast<int>(answer_body.size()), answer_body.data());
    std::fflush(stdout);
  };
  auto source = [inner = sim::make_seed_source(random_seed), targets = seed.targets](std::uint64_t n) {
    sim::RequestSpec spec = inner(n);
    spec.target = targets.at(spec.endpoint);
    return spec;
  };
  std::fprintf(stderr, "sending one of the seed's five events every %s (seed %llu); Ctrl-C to stop\n",
               seed.interval.c_str(), static_cast<unsigned long long>(random_seed));
  const auto r = sim::run_load(options, source);
  std::fprintf(stderr, "%llu sent, %llu answered 2xx, %llu other answers, %llu without an answer\n",
               static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.ok()),
               static_cast<unsigned long long>(r.completed - r.ok()),
               static_cast<unsigned long long>(r.transport_errors()));
  return exit_code(r);
}

int run(const sim::LoadOptions& options, const sim::PaymentsCommand& command) {
  sim::PaymentOptions pay = command.payments;
  if (pay.run_id.empty()) {
    // Two runs with the same keys would be answered as idempotent replays: each run its own.
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    pay.run_id = sim::default_run_id(pay.seed) + "-" + std::to_string(now.count());
  }
  std::fprintf(stderr, "%s\n", sim::describe(pay).c_str());
  warn_if_over_velocity_bound(options, pay.population);
  auto source = to_single_endpoint(sim::make_payment_source(pay), pay.target);
  return finish(sim::run_load(options, std::move(source)), command.json);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto parsed = sim::parse_sim_config(argc, argv);
    if (auto* exit = std::get_if<sim::ParseExit>(&parsed)) {
      std::fputs(exit->message.c_str(), exit->code == 0 ? stdout : stderr);
      return exit->code;
    }
    auto& config = std::get<sim::SimConfig>(parsed);
    config.load.stop = &g_stop;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    return std::visit([&](const auto& command) { return run(config.load, command); }, config.command);
  } catch (const std::invalid_argument& e) {  // options run_load refuses (a CA file that does not load...)
    std::fprintf(stderr, "pix-sim: %s\n", e.what());
    return kExitBadArguments;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pix-sim: %s\n", e.what());
    return kExitFailures;
  }
}
