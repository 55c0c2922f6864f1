#pragma once
/// @file The process around a saga stage: flags, logging, publishers, the admin endpoint, signals.

namespace pix::saga {

enum class StageKind { kAntifraud, kSettlement, kNotifier, kAuditor };

/// main() of pix-antifraud, pix-settlement, pix-notifier and pix-auditor. Runs until SIGTERM or
/// SIGINT, then finishes in-flight work, commits and exits 0.
int run_stage_app(StageKind kind, int argc, char** argv);

}  // namespace pix::saga
