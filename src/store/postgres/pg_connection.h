// One libpq connection: connect with a DSN, run parameterised statements (text in, text out), map
// PostgreSQL's errors (SQLSTATE) onto Status codes. Not thread-safe: one caller at a time.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/status.h"

struct pg_conn;

namespace shardvec {

// A statement parameter or result cell: text, or nullopt for SQL NULL.
using PgValue = std::optional<std::string>;
using PgRow = std::vector<PgValue>;

// "postgresql://user@host:port/dbname" for messages: the DSN's parts without its password (and
// without any other option). InvalidArgument naming `field` when the DSN does not parse.
Result<std::string> DescribePgDsn(std::string_view dsn, std::string_view field = "dsn");

class PgConnection {
 public:
  // IOError naming `description` (never the DSN itself, which may hold a password) when the server
  // cannot be reached or refuses the login.
  static Result<std::unique_ptr<PgConnection>> Connect(const std::string& dsn, const std::string& description);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs `sql` with `params` ($1, $2, … in order). Errors: AlreadyExists (unique_violation),
  // NotFound (undefined_table), PermissionDenied (insufficient_privilege), InvalidArgument (a data
  // exception, e.g. a value out of a column's range), Unavailable (the connection broke, a
  // deadlock or serialisation failure), IOError otherwise; each message says `what`.
  Result<std::vector<PgRow>> Exec(const std::string& sql, const std::vector<PgValue>& params,
                                  std::string_view what);
  // Exec without rows to return.
  Status Run(const std::string& sql, const std::vector<PgValue>& params, std::string_view what);
  // Reconnects when the connection broke since the last call (a server restart, a network cut).
  Status EnsureOpen();

 private:
  PgConnection(pg_conn* conn, std::string description) : conn_(conn), description_(std::move(description)) {}
  pg_conn* conn_;
  std::string description_;
};

// A transaction that rolls back unless committed (and reports nothing from the rollback: the
// error that left it open is the one the caller returns). `isolation_sql` (a SET TRANSACTION …)
// runs right after BEGIN.
class PgTransaction {
 public:
  PgTransaction(PgConnection& conn, const std::string& isolation_sql);
  ~PgTransaction();
  const Status& begun() const { return begun_; }
  Status Commit();

 private:
  PgConnection& conn_;
  Status begun_;
  bool open_ = false;
};

}  // namespace shardvec
