#pragma once
/// @file Configuration of `pix-sim`: its three subcommands' flags, checked and turned into the
/// load engine's options.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "pix/sim/load_engine.hpp"
#include "pix/sim/payment_generator.hpp"
#include "pix/util/cli.hpp"

namespace pix::sim {

/// @brief `pix-sim load`: one JSON body sent over and over to `--url`.
struct LoadCommand {
  std::string target = "/kafka";  ///< --url's path and query
  std::string body;               ///< --body, the contents of --body-file, or the seed's curl example
  bool json = false;              ///< print the result as JSON
};

/// @brief `pix-sim seed`: the seed's simulator, one of its five events every `--interval`, each
/// answer printed.
struct SeedCommand {
  std::array<std::string, 2> targets{"/kafka", "/rabbit"};  ///< api-kafka's path (endpoint 0), api-rabbitmq's
  std::string interval = "5s";                              ///< as given, for the line printed at the start
  std::optional<std::uint64_t> seed;                        ///< of the choice of events; nothing: the caller's clock
};

/// @brief `pix-sim payments`: realistic payments between the simulator's accounts.
struct PaymentsCommand {
  /// `target` is --url's path ("/kafka" or "/rabbit"). `run_id` stays empty without --run-id:
  /// the caller makes one per run (from the clock), so two runs never share keys.
  PaymentOptions payments;
  bool json = false;  ///< print the result as JSON
};

/// @brief Everything `pix-sim` can be told. Defaults match `pix-sim <command> --help`.
struct SimConfig {
  /// The engine's options with the URLs resolved into endpoints, the duration parsed, the TLS
  /// trust and every header (the bearer token included) in place. `stop` and `on_answer` are the
  /// caller's to set.
  LoadOptions load;
  std::variant<LoadCommand, SeedCommand, PaymentsCommand> command;
};

/// What to print and the exit code when the flags ask for no run (--help: 0) or are wrong (2).
using ParseExit = util::ParseExit;

/// Parses `pix-sim <load|seed|payments> [flags]`, reading --body-file and --bearer-file. Never
/// exits the process itself; a wrong value gives code 2 and a message naming its flag.
std::variant<SimConfig, ParseExit> parse_sim_config(int argc, const char* const* argv);

}  // namespace pix::sim
