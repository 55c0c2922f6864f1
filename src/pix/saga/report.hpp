#pragma once
/// @file The summary of a saga run, read from the audit store (every event, once) and the ledger.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "pix/audit/audit_store.hpp"
#include "pix/ledger/ledger.hpp"

namespace pix::saga {

/// @brief Counts per stage, rejections by reason, and the two invariants.
struct SagaReport {
  std::size_t requested = 0;
  std::size_t validated = 0;
  std::size_t rejected_at_validation = 0;
  std::map<std::string, std::size_t> rejected_by_reason;  ///< "AM02 night_limit" -> n (validation and settlement)
  std::size_t settled = 0;
  std::size_t rejected_at_settlement = 0;
  std::size_t notified = 0;
  std::size_t notified_rejections = 0;  ///< duplicates (AM05) notified as rejected
  std::size_t audited = 0;              ///< entries in the chain
  bool chain_valid = false;
  std::string chain_detail;
  std::optional<std::int64_t> total_balance;  ///< sum over every account: 0 when money is conserved
  std::size_t ledger_payments = 0;
  std::size_t ledger_postings = 0;
};

/// Walk the audit store (and verify it) and read the ledger's invariants, if one is given.
SagaReport build_report(audit::AuditStore& audit, ledger::Ledger* ledger);

/// A readable table; `json` for a machine.
std::string render_report(const SagaReport& r);
std::string report_json(const SagaReport& r);

}  // namespace pix::saga
