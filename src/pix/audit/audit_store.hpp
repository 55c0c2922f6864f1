#pragma once
/// @file The auditor's append-only, hash-chained event store (SQLite), and its verifier.
///
/// Hash encoding (version "pix-audit-v1"), so that an external tool can re-verify a file:
///
///     field(b)  = len(b) as 8-byte unsigned big-endian || b
///     message   = field("pix-audit-v1")
///              || field(decimal(seq)) || field(event_id) || field(source) || field(payload)
///              || field(decimal(recorded_at_ms)) || field(prev_hash)
///     hash      = lowercase hex of SHA-256(message)   (64 characters)
///
/// `decimal(n)` is the integer in ASCII decimal: no sign unless negative ("-5"), no leading zeros,
/// no padding. Strings are the exact bytes stored in the `entries` columns (no normalization).
/// `prev_hash` is the previous entry's `hash`, or kGenesisHash (64 '0') for seq 1. Because every
/// field carries its length, no two different entries share a message (moving bytes from payload
/// into source changes the prefixes). In Python:
///
///     f = lambda b: len(b).to_bytes(8, "big") + b
///     m = (f(b"pix-audit-v1") + f(str(seq).encode()) + f(event_id) + f(source) + f(payload)
///          + f(str(recorded_at_ms).encode()) + f(prev_hash.encode()))
///     hashlib.sha256(m).hexdigest()
///
/// What the chain proves: any edit, insertion or deletion before the last entry is detected by
/// verify(), unless the editor also rewrites every later hash (the chain is unkeyed), and
/// dropping entries from the end is not detectable from the file alone. The auditor announces each
/// entry's seq and hash on pix.audit.log, and audit_anchor.hpp checks the store against that
/// anchor (`pix-admin verify-audit --anchor-kafka`) to close both gaps.

#include "pix/storage/sqlite.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pix::audit {

/// First field of every hashed message; a future encoding gets a new tag.
inline constexpr std::string_view kHashFormatTag = "pix-audit-v1";
/// prev_hash of the first entry.
inline constexpr std::string_view kGenesisHash = "0000000000000000000000000000000000000000000000000000000000000000";
/// verify() reports progress after every this many entries.
inline constexpr std::size_t kVerifyProgressEvery = 10'000;
/// `PRAGMA user_version` of the schema this code writes.
inline constexpr std::int64_t kAuditSchemaVersion = 1;

/// @brief One stored event, as it is in the `entries` table.
struct AuditEntry {
  std::int64_t seq = 0;  ///< 1, 2, 3...: position in the chain, without gaps
  std::string event_id;  ///< unique: an event is stored once however often it is delivered
  std::string source;
  std::string payload;
  std::int64_t recorded_at_ms = 0;
  std::string prev_hash;  ///< hash of entry seq-1, or kGenesisHash
  std::string hash;       ///< see the file comment for the encoding

  bool operator==(const AuditEntry&) const = default;
};

/// @brief What append() did: `entry` is the new entry, or the one stored earlier for the id.
struct AppendResult {
  bool appended = false;
  AuditEntry entry;
};

/// @brief Outcome of walking the chain.
struct VerifyReport {
  bool ok = true;
  std::size_t entries = 0;                       ///< entries checked and found intact, from seq 1 on
  std::optional<std::int64_t> first_broken_seq;  ///< lowest seq that can't be trusted (ok == false)
  std::string reason;                            ///< what was wrong there, for a human
};

/// @brief Append-only store of audit events in one SQLite file, each entry chained to the one
/// before by a SHA-256 hash.
///
/// Appending is the only write: there is no update or delete in this API, and SQLite triggers
/// refuse UPDATE and DELETE on the table from any connection (against accidents; someone with
/// write access to the file can drop them, which verify() then catches).
///
/// Durability: synchronous=FULL by default; an append that returned survives kill -9 and power
/// loss, so the caller may acknowledge the event after it. Each append is one IMMEDIATE
/// transaction holding both the dedupe check and the insert.
///
/// Errors: storage failures throw storage::SqliteError; the chain's state is a value (VerifyReport).
///
/// Thread-compatible: one AuditStore per thread (queries step statements on the one connection,
/// hence non-const). Other processes may open the same file, e.g. to verify while the auditor
/// appends; WAL lets them read a consistent snapshot.
class AuditStore {
 public:
  /// Opens or creates the store at `path`. Throws storage::SqliteError, or std::runtime_error for
  /// a file of a newer schema version.
  explicit AuditStore(const std::string& path, storage::DatabaseOptions options = {});

  /// Appends the event unless `event_id` is already stored, in which case nothing is written and
  /// the stored entry is returned with `appended = false` (its fields may differ from the
  /// arguments: the first delivery wins).
  AppendResult append(std::string_view event_id, std::string_view source, std::string_view payload,
                      std::int64_t recorded_at_ms);

  /// Walks every entry in seq order, checking that seqs run 1, 2, 3... without gaps, that each
  /// prev_hash is the hash of the entry before (kGenesisHash for seq 1), and that each hash is the
  /// one recomputed from the entry's fields. Stops at the first failure. Reads one snapshot, so
  /// appends made meanwhile (by another connection) are not seen.
  VerifyReport verify();
  /// As verify(), calling `progress(done)` after every kVerifyProgressEvery entries.
  VerifyReport verify(const std::function<void(std::size_t done)>& progress);

  /// Number of entries.
  std::size_t count();
  /// Whether an entry with `event_id` is stored.
  bool contains(std::string_view event_id);
  /// The entry with the highest seq, or nullopt if the store is empty.
  std::optional<AuditEntry> last();
  /// Up to `limit` entries with seq >= `from_seq`, in seq order.
  std::vector<AuditEntry> entries(std::int64_t from_seq, std::size_t limit);

 private:
  void create_schema();

  storage::Database db_;
};

}  // namespace pix::audit
