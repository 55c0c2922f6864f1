#pragma once
/// @file A small RAII layer over the SQLite C API: connection, prepared statement, transaction.
///
/// Error policy here: every SQLite failure throws SqliteError. The stores built on this layer
/// (ledger, audit) sit behind a consumer whose only sane reaction to a storage failure (disk full,
/// I/O error, a corrupted file) is to stop without committing the broker offset and let the
/// supervisor restart it; an exception carries that to the top of the stage without threading a
/// result type through every query. Expected business outcomes (duplicate, overdraft) are values
/// returned by the stores, never exceptions.

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace pix::storage {

/// @brief A failed SQLite call: the context, SQLite's own message and its extended result code.
class SqliteError : public std::runtime_error {
 public:
  SqliteError(std::string_view context, int extended_code, std::string sqlite_message);

  /// Extended result code, e.g. SQLITE_CONSTRAINT_UNIQUE (2067) or SQLITE_BUSY_SNAPSHOT.
  int extended_code() const noexcept { return extended_code_; }
  /// Primary result code (the low byte of the extended one), e.g. SQLITE_CONSTRAINT (19).
  int primary_code() const noexcept { return extended_code_ & 0xff; }
  /// The message SQLite gave, without our context.
  const std::string& sqlite_message() const noexcept { return sqlite_message_; }

 private:
  int extended_code_;
  std::string sqlite_message_;
};

/// @brief `PRAGMA synchronous` level. Both keep every commit atomic under WAL; they differ in
/// what survives a power cut or kernel crash (see DatabaseOptions).
enum class Synchronous {
  kNormal,  ///< fsync at checkpoints only: survives kill -9, may lose the last commits on power loss
  kFull,    ///< fsync the WAL at every commit: a commit that returned survives power loss too
};

/// @brief How a Database is opened.
struct DatabaseOptions {
  /// kFull by default: our stores acknowledge broker messages (commit the Kafka offset, emit the
  /// next saga event) right after a commit, so a commit that could vanish on power loss would
  /// turn into a payment that was announced but never posted. Callers that can re-derive their
  /// data may choose kNormal, which under WAL is still crash-safe for a killed process.
  Synchronous synchronous = Synchronous::kFull;
  /// How long a write waits for another connection's write lock before failing with SQLITE_BUSY.
  std::chrono::milliseconds busy_timeout{5000};
};

class Statement;

/// @brief One SQLite connection in WAL mode with foreign keys on.
///
/// Thread-compatible: opened with SQLITE_OPEN_NOMUTEX, so a Database (and its statements) must be
/// used by one thread at a time. Other processes may open the same file; WAL lets their readers
/// run beside our single writer.
class Database {
 public:
  /// Opens (creating if missing) the database at `path` and applies the pragmas. Throws SqliteError,
  /// also when the file cannot be put in WAL mode (":memory:" included): we never fall back silently.
  explicit Database(const std::string& path, DatabaseOptions options = {});
  /// Closes the connection; statements still alive keep it open until they are finalized.
  ~Database();

  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;

  /// Runs one or more SQL statements that return no rows needed by the caller (DDL, pragmas).
  void exec(std::string_view sql);
  /// Compiles one SQL statement. Throws SqliteError on a syntax error or unknown table.
  Statement prepare(std::string_view sql);

  /// Rowid of the last successful INSERT on this connection.
  std::int64_t last_insert_rowid() const noexcept;
  /// Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  std::int64_t changes() const noexcept;
  /// True when no transaction is open (SQLite rolls back by itself after some errors).
  bool autocommit() const noexcept;

  /// `PRAGMA user_version`, which our stores use as their schema version.
  std::int64_t user_version();

  /// The raw handle, for what this wrapper does not cover. Do not close it.
  sqlite3* handle() const noexcept { return db_; }

 private:
  void close() noexcept;

  sqlite3* db_ = nullptr;
};

/// @brief A prepared statement, finalized on destruction.
///
/// Parameter and column indexes follow SQLite: parameters count from 1, columns from 0. Text is
/// bound by copy (SQLITE_TRANSIENT), so the argument need not outlive the call.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) noexcept : db_(db), stmt_(stmt) {}
  ~Statement();

  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;

  /// Binds text (any bytes, embedded NULs included) to parameter `index`.
  Statement& bind_text(int index, std::string_view value);
  /// Binds a 64-bit integer to parameter `index`.
  Statement& bind_int64(int index, std::int64_t value);
  /// Binds NULL to parameter `index`.
  Statement& bind_null(int index);

  /// Advances: true when a row is available, false when the statement has finished. Throws on error.
  bool step();
  /// Steps a statement that must not return rows (INSERT/UPDATE/DELETE) to completion.
  void run();
  /// Rewinds the statement and clears its bindings, so that it can run again.
  void reset() noexcept;

  bool column_is_null(int index) const noexcept;
  std::int64_t column_int64(int index) const noexcept;
  /// Column as bytes (a copy); NULL reads as the empty string.
  std::string column_text(int index) const;

 private:
  void check_bind(int rc, int index);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

/// @brief BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless commit() succeeded.
///
/// IMMEDIATE takes the write lock up front: the read-then-write done inside (check the dedupe
/// record, then post) cannot be overtaken by another writer between the read and the write, and
/// a busy database fails at BEGIN (after busy_timeout) rather than half-way through.
class Transaction {
 public:
  explicit Transaction(Database& db);
  /// Rolls back if still open. Does not throw: a failed rollback is logged, and the connection
  /// stays inside the transaction, so the next BEGIN fails loudly instead of writing on top.
  ~Transaction();

  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  /// Makes the transaction's writes durable (per the Synchronous level). Throws SqliteError; the
  /// destructor then rolls back whatever SQLite has not already.
  void commit();

 private:
  Database& db_;
  bool done_ = false;
};

}  // namespace pix::storage
