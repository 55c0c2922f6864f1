#include "pix/storage/sqlite.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <utility>

namespace pix::storage {
namespace {

std::string describe(std::string_view context, int extended_code, const std::string& message) {
  std::string out(context);
  out += ": ";
  out += message;
  out += " (sqlite extended code ";
  out += std::to_string(extended_code);
  out += ")";
  return out;
}

[[noreturn]] void throw_error(sqlite3* db, int rc, std::string_view context) {
  // sqlite3_errmsg describes the most recent failure on the connection, which is this one as long
  // as nothing else ran in between; for an open failure db may be null.
  std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw SqliteError(context, rc, std::move(message));
}

}  // namespace

SqliteError::SqliteError(std::string_view context, int extended_code, std::string sqlite_message)
    : std::runtime_error(describe(context, extended_code, sqlite_message)),
      extended_code_(extended_code),
      sqlite_message_(std::move(sqlite_message)) {}

Database::Database(const std::string& path, DatabaseOptions options) {
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    // Even a failed open may allocate a handle, which holds the message and must be closed.
    std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    const int code = db_ != nullptr ? sqlite3_extended_errcode(db_) : rc;
    close();
    throw SqliteError("open " + path, code, std::move(message));
  }
  sqlite3_extended_result_codes(db_, 1);
  // Before the pragmas: switching a fresh file to WAL takes a lock that another process opening
  // the same file at the same moment may hold.
  sqlite3_busy_timeout(db_, static_cast<int>(options.busy_timeout.count()));
  try {
    // journal_mode answers with the mode it ended up in: a file that cannot do WAL (e.g. on a
    // filesystem without shared memory) would silently stay in rollback mode otherwise.
    {
      Statement wal = prepare("PRAGMA journal_mode=WAL");
      if (!wal.step() || wal.column_text(0) != "wal") {
        throw SqliteError("open " + path, SQLITE_ERROR, "journal_mode=WAL was refused");
      }
    }
    exec(options.synchronous == Synchronous::kFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON");
  } catch (...) {
    close();  // the destructor will not run for a constructor that throws
    throw;
  }
}

Database::~Database() {
  close();
}

Database::Database(Database&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    close();
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

void Database::close() noexcept {
  // close_v2 defers the close until the last statement is finalized instead of failing with
  // SQLITE_BUSY, so the order in which a store's members are destroyed does not matter.
  if (db_ != nullptr) sqlite3_close_v2(db_);
  db_ = nullptr;
}

void Database::exec(std::string_view sql) {
  const std::string text(sql);
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string what = message != nullptr ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    throw SqliteError("exec " + text, sqlite3_extended_errcode(db_), std::move(what));
  }
}

Statement Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) throw_error(db_, rc, "prepare " + std::string(sql));
  return Statement(db_, stmt);
}

std::int64_t Database::last_insert_rowid() const noexcept {
  return sqlite3_last_insert_rowid(db_);
}

std::int64_t Database::changes() const noexcept {
  return sqlite3_changes64(db_);
}

bool Database::autocommit() const noexcept {
  return sqlite3_get_autocommit(db_) != 0;
}

std::int64_t Database::user_version() {
  Statement stmt = prepare("PRAGMA user_version");
  return stmt.step() ? stmt.column_int64(0) : 0;
}

Statement::~Statement() {
  // finalize returns the error of the last step, which step() has already thrown.
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

Statement::Statement(Statement&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

void Statement::check_bind(int rc, int index) {
  if (rc != SQLITE_OK) throw_error(db_, rc, "bind parameter " + std::to_string(index) + " of " + sqlite3_sql(stmt_));
}

Statement& Statement::bind_text(int index, std::string_view value) {
  // A null data pointer would bind NULL, not the empty string.
  const char* data = value.data() != nullptr ? value.data() : "";
  check_bind(sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8), index);
  return *this;
}

Statement& Statement::bind_int64(int index, std::int64_t value) {
  check_bind(sqlite3_bind_int64(stmt_, index, value), index);
  return *this;
}

Statement& Statement::bind_null(int index) {
  check_bind(sqlite3_bind_null(stmt_, index), index);
  return *this;
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  throw_error(db_, rc, std::string("step ") + sqlite3_sql(stmt_));
}

void Statement::run() {
  if (step()) throw SqliteError(std::string("run ") + sqlite3_sql(stmt_), SQLITE_MISUSE, "statement returned rows");
}

void Statement::reset() noexcept {
  // reset repeats the last step's error code, which step() has already thrown.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Statement::column_is_null(int index) const noexcept {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

std::int64_t Statement::column_int64(int index) const noexcept {
  return sqlite3_column_int64(stmt_, index);
}

std::string Statement::column_text(int index) const {
  // text() before bytes(), as SQLite documents: bytes() then measures the converted value.
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  const int size = sqlite3_column_bytes(stmt_, index);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
}

Transaction::Transaction(Database& db) : db_(db) {
  db_.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (done_) return;
  // After SQLITE_FULL, IOERR, NOMEM and the like SQLite may have rolled back by itself already.
  if (db_.autocommit()) return;
  const int rc = sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    spdlog::error("sqlite ROLLBACK failed: {} (extended code {}); the connection is left inside the transaction",
                  sqlite3_errmsg(db_.handle()), sqlite3_extended_errcode(db_.handle()));
  }
}

void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace pix::storage
