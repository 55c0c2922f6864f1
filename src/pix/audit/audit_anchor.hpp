#pragma once
/// @file Anchoring the audit chain outside its file: the auditor announces every entry it appends
/// (seq and hash) on pix.audit.log, so that a store whose tail was cut off, or whose chain was
/// rewritten from some entry on, no longer matches what was announced. The chain alone cannot
/// show either (see audit_store.hpp). What `pix-admin verify-audit --anchor-kafka` checks.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pix/audit/audit_store.hpp"

namespace pix::audit {

/// @brief An entry as announced elsewhere: the store must hold this seq, with this hash.
struct AuditAnchor {
  std::int64_t seq = 0;
  std::string hash;
  /// Where it was read, for the messages: a topic, or "pix.audit.log (partition 2, offset 17)".
  std::string origin = "pix.audit.log";
};

/// Reads the anchor out of one pix.audit.log value (the JSON saga::Auditor::audit() publishes:
/// `seq`, `hash`, `prevHash`...). Nullopt for anything else (not JSON, not an object, no positive
/// integer `seq`, no non-empty string `hash`): a record that announces nothing is no anchor,
/// rather than an error, since anyone allowed to write the topic may have written it.
std::optional<AuditAnchor> parse_anchor(std::string_view value);

/// @brief How the store stands against the anchor.
enum class AnchorStatus {
  kNoAnchor,   ///< nothing announced yet: the chain is only as good as its file
  kReached,    ///< the store holds the announced entry (and maybe entries past it)
  kTruncated,  ///< the store ends before the announced seq: its tail was cut off
  kDiverged,   ///< the store's entry at the announced seq has another hash
};

/// @brief Outcome of check_anchor(): `ok` for kNoAnchor and kReached.
struct AnchorVerdict {
  bool ok = true;
  AnchorStatus status = AnchorStatus::kNoAnchor;
  std::int64_t chain_end = 0;   ///< seq of the store's last entry (0: the store is empty)
  std::size_t past_anchor = 0;  ///< kReached: entries appended after the anchor, not yet announced
  std::string detail;           ///< what was found, for a human
};

/// Compares the store's tail with `anchor`. An entry past the anchor is no fault: the auditor
/// appends before it announces, so the store may be ahead of the topic. Reads the store only
/// (two queries; appends made meanwhile only move the end forward): walk the chain with
/// AuditStore::verify() too, since a store that reaches the anchor may still be broken before it.
/// Read the anchor before the store, so that an entry announced meanwhile is never taken as
/// missing. Throws storage::SqliteError as the store does.
AnchorVerdict check_anchor(AuditStore& store, const std::optional<AuditAnchor>& anchor);

}  // namespace pix::audit
