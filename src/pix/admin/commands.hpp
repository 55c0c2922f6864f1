#pragma once
/// @file What each pix-admin subcommand does; each returns the process's exit code and prints
/// its outcome (stdout) or what went wrong (stderr).

#include "pix/admin/admin_config.hpp"

namespace pix::admin {

/// Creates (or with --delete removes) the topics, ACLs and RabbitMQ topology; safe to run again.
/// 0 when every part is in place, 1 when any failed (each named on stderr).
int run_topology(const TopologyConfig& config);
/// 0: chain valid and money conserved; 3: not; throws when a store cannot be opened.
int run_report(const ReportConfig& config);
/// 0 intact, 1 the anchor could not be read, 3 broken, truncated or rewritten; throws when the
/// store cannot be opened.
int run_verify_audit(const VerifyAuditConfig& config);
/// 0 written (0600), 1 the file exists or cannot be written.
int run_decision_key(const DecisionKeyConfig& config);
/// 0 printed at least one trace, 1 none found, 2 Jaeger unreachable or failing.
int run_trace(const TraceConfig& config);

/// Dispatches to the subcommand `config.command` names; a failure that throws becomes exit 1.
int run(const AdminConfig& config);

}  // namespace pix::admin
