// A prepared SQLite statement that finalizes itself, with the few accessors our readers and
// writers use.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace shardvec {

class SqliteStatement {
 public:
  // `flags` are sqlite3_prepare_v3's: 0, or SQLITE_PREPARE_PERSISTENT for a statement a connection
  // keeps and runs many times.
  SqliteStatement(sqlite3* db, std::string_view sql, unsigned int flags = 0)
      : prepare_rc_(sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), flags, &stmt_,
                                       nullptr)) {}
  ~SqliteStatement() { sqlite3_finalize(stmt_); }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  bool ok() const { return prepare_rc_ == SQLITE_OK; }
  // What preparing returned: SQLITE_OK, or the error code behind !ok().
  int prepare_rc() const { return prepare_rc_; }
  sqlite3_stmt* get() const { return stmt_; }
  int Step() { return sqlite3_step(stmt_); }
  // Steps a statement that returns no rows and resets it for the next binding; SQLITE_DONE on success.
  int Run() {
    const int rc = sqlite3_step(stmt_);
    sqlite3_reset(stmt_);
    return rc;
  }
  std::string_view Blob(int column) const {
    const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
    return {data, data == nullptr ? 0 : static_cast<size_t>(sqlite3_column_bytes(stmt_, column))};
  }
  std::string Text(int column) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return text == nullptr ? std::string() : std::string(text);
  }
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int prepare_rc_;
};

}  // namespace shardvec
