#include "pix/audit/audit_store.hpp"

#include "pix/util/sha256.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <stdexcept>

namespace pix::audit {
namespace {

using storage::Statement;
using storage::Transaction;

constexpr std::string_view kSchemaSql = R"sql(
CREATE TABLE entries (
  seq            INTEGER PRIMARY KEY,
  event_id       TEXT UNIQUE NOT NULL,
  source         TEXT NOT NULL,
  payload        TEXT NOT NULL,
  recorded_at_ms INTEGER NOT NULL,
  prev_hash      TEXT NOT NULL,
  hash           TEXT NOT NULL
);
CREATE TRIGGER entries_append_only_update BEFORE UPDATE ON entries
  BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER entries_append_only_delete BEFORE DELETE ON entries
  BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
)sql";

constexpr std::string_view kEntryColumns = "seq, event_id, source, payload, recorded_at_ms, prev_hash, hash";

constexpr std::size_t kLengthPrefixSize = 8;  // bytes of the big-endian length before each field
constexpr std::size_t kHashedFieldCount = 7;  // tag + the six entry fields
constexpr std::size_t kMaxDecimalInt64 = 20;  // "-9223372036854775808"

void append_field(std::string& out, std::string_view bytes) {
  std::uint64_t size = bytes.size();
  std::array<char, kLengthPrefixSize> prefix{};
  for (std::size_t i = kLengthPrefixSize; i-- > 0;) {
    prefix[i] = static_cast<char>(size & 0xff);
    size >>= 8;
  }
  out.append(prefix.data(), prefix.size());
  out.append(bytes);
}

// The encoding documented in audit_store.hpp; change both together, with a new kHashFormatTag.
std::string chain_hash(std::int64_t seq, std::string_view event_id, std::string_view source, std::string_view payload,
                       std::int64_t recorded_at_ms, std::string_view prev_hash) {
  std::string message;
  message.reserve(kHashedFieldCount * kLengthPrefixSize + kHashFormatTag.size() + event_id.size() + source.size() +
                  payload.size() + 2 * kMaxDecimalInt64 + prev_hash.size());
  append_field(message, kHashFormatTag);
  append_field(message, std::to_string(seq));
  append_field(message, event_id);
  append_field(message, source);
  append_field(message, payload);
  append_field(message, std::to_string(recorded_at_ms));
  append_field(message, prev_hash);

  return util::sha256_hex(message);
}

std::string chain_hash(const AuditEntry& e) {
  return chain_hash(e.seq, e.event_id, e.source, e.payload, e.recorded_at_ms, e.prev_hash);
}

// Reads a row selected with kEntryColumns, in that order.
AuditEntry read_entry(const Statement& stmt) {
  return AuditEntry{stmt.column_int64(0), stmt.column_text(1), stmt.column_text(2), stmt.column_text(3),
                    stmt.column_int64(4), stmt.column_text(5), stmt.column_text(6)};
}

std::string select_entries(std::string_view rest) {
  return "SELECT " + std::string(kEntryColumns) + " FROM entries " + std::string(rest);
}

}  // namespace

AuditStore::AuditStore(const std::string& path, storage::DatabaseOptions options) : db_(path, options) {
  create_schema();
}

void AuditStore::create_schema() {
  // Inside the write lock, so two processes opening a fresh file do not both create it.
  Transaction tx(db_);
  const std::int64_t version = db_.user_version();
  if (version > kAuditSchemaVersion) {
    throw std::runtime_error("audit schema version " + std::to_string(version) + " is newer than this program's " +
                             std::to_string(kAuditSchemaVersion));
  }
  if (version == kAuditSchemaVersion) return;  // the transaction rolls back: nothing was written
  db_.exec(kSchemaSql);
  db_.exec("PRAGMA user_version = " + std::to_string(kAuditSchemaVersion));
  tx.commit();
}

AppendResult AuditStore::append(std::string_view event_id, std::string_view source, std::string_view payload,
                                std::int64_t recorded_at_ms) {
  Transaction tx(db_);
  {
    Statement existing = db_.prepare(select_entries("WHERE event_id = ?"));
    existing.bind_text(1, event_id);
    // Nothing was written: tx's rollback on return just releases the write lock.
    if (existing.step()) return {false, read_entry(existing)};
  }

  AuditEntry entry{
      1, std::string(event_id), std::string(source), std::string(payload), recorded_at_ms, std::string(kGenesisHash),
      {}};
  {
    Statement tail = db_.prepare("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1");
    if (tail.step()) {
      entry.seq = tail.column_int64(0) + 1;
      entry.prev_hash = tail.column_text(1);
    }
  }
  entry.hash = chain_hash(entry);

  Statement insert = db_.prepare(
      "INSERT INTO entries (seq, event_id, source, payload, recorded_at_ms, prev_hash, hash) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)");
  insert.bind_int64(1, entry.seq).bind_text(2, entry.event_id).bind_text(3, entry.source).bind_text(4, entry.payload);
  insert.bind_int64(5, entry.recorded_at_ms).bind_text(6, entry.prev_hash).bind_text(7, entry.hash);
  insert.run();
  tx.commit();
  return {true, std::move(entry)};
}

VerifyReport AuditStore::verify() {
  return verify(nullptr);
}

VerifyReport AuditStore::verify(const std::function<void(std::size_t done)>& progress) {
  VerifyReport report;
  auto broken = [&report](std::int64_t seq, std::string reason) {
    report.ok = false;
    report.first_broken_seq = seq;
    report.reason = std::move(reason);
    return report;
  };

  // One statement: SQLite holds its read snapshot until the walk ends, so a concurrent append
  // cannot make the walk see half a chain.
  Statement walk = db_.prepare(select_entries("ORDER BY seq"));
  std::int64_t expected_seq = 1;
  std::string expected_prev(kGenesisHash);
  while (walk.step()) {
    const AuditEntry e = read_entry(walk);
    if (e.seq != expected_seq) {
      // Entries expected_seq..e.seq-1 are gone (or seqs were rewritten): trust ends at the first.
      return broken(expected_seq, "expected seq " + std::to_string(expected_seq) + ", found seq " +
                                      std::to_string(e.seq) + " (entries missing or renumbered)");
    }
    if (e.prev_hash != expected_prev) {
      return broken(e.seq, "prev_hash " + e.prev_hash + " is not the hash of the entry before (" + expected_prev + ")");
    }
    if (const std::string recomputed = chain_hash(e); recomputed != e.hash) {
      return broken(e.seq, "stored hash " + e.hash + " does not match the entry's contents (" + recomputed + ")");
    }
    ++report.entries;
    ++expected_seq;
    expected_prev = e.hash;
    if (progress && report.entries % kVerifyProgressEvery == 0) progress(report.entries);
  }
  return report;
}

std::size_t AuditStore::count() {
  Statement stmt = db_.prepare("SELECT COUNT(*) FROM entries");
  stmt.step();
  return static_cast<std::size_t>(stmt.column_int64(0));
}

bool AuditStore::contains(std::string_view event_id) {
  Statement stmt = db_.prepare("SELECT 1 FROM entries WHERE event_id = ?");
  stmt.bind_text(1, event_id);
  return stmt.step();
}

std::optional<AuditEntry> AuditStore::last() {
  Statement stmt = db_.prepare(select_entries("ORDER BY seq DESC LIMIT 1"));
  if (!stmt.step()) return std::nullopt;
  return read_entry(stmt);
}

std::vector<AuditEntry> AuditStore::entries(std::int64_t from_seq, std::size_t limit) {
  const auto bounded =
      static_cast<std::int64_t>(std::min(limit, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())));
  Statement stmt = db_.prepare(select_entries("WHERE seq >= ? ORDER BY seq LIMIT ?"));
  stmt.bind_int64(1, from_seq).bind_int64(2, bounded);
  std::vector<AuditEntry> out;
  while (stmt.step()) out.push_back(read_entry(stmt));
  return out;
}

}  // namespace pix::audit
