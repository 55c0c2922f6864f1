#pragma once
/// @file The process around a saga stage: flags (stage_config.hpp), logging, publishers, the
/// admin endpoint, the stop (service/lifecycle.hpp).

namespace pix::saga {

enum class StageKind { kAntifraud, kSettlement, kNotifier, kAuditor };

/// main() of pix-antifraud, pix-settlement, pix-notifier and pix-auditor. Runs until SIGTERM or
/// SIGINT, then finishes in-flight work (bounded by --drain-timeout-ms), commits and exits 0; 1
/// if it cannot start or a part of it failed (the auditor's notification input), 2 (or CLI11's
/// code) for bad flags.
int run_stage_app(StageKind kind, int argc, char** argv);

}  // namespace pix::saga
