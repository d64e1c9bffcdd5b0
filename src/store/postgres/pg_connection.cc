#include "store/postgres/pg_connection.h"

#include <libpq-fe.h>

#include <fmt/format.h>

#include "shardvec/text.h"

namespace shardvec {
namespace {

struct ResultClear {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultClear>;

std::string Trimmed(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

Status FromSqlState(std::string_view state, std::string message) {
  if (state == "23505") return Status::AlreadyExists(std::move(message));
  if (state == "42P01") return Status::NotFound(std::move(message));
  if (state == "42501") return Status::PermissionDenied(std::move(message));
  if (state.substr(0, 2) == "22") return Status::InvalidArgument(std::move(message));
  if (state.substr(0, 2) == "08" || state == "40001" || state == "40P01" || state.substr(0, 3) == "57P") {
    return Status::Unavailable(std::move(message));
  }
  return Status::IOError(std::move(message));
}

}  // namespace

Result<std::string> DescribePgDsn(std::string_view dsn, std::string_view field) {
  if (dsn.empty()) return Status::InvalidArgument(fmt::format("{} is empty: give a postgresql:// URL", field));
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(std::string(dsn).c_str(), &error);
  if (options == nullptr) {
    std::string why = error ? Trimmed(error) : "out of memory";
    PQfreemem(error);
    // libpq's message may quote the bad part, which may be the password: keep only what precedes it.
    const size_t quote = why.find('"');
    return Status::InvalidArgument(fmt::format("{} is not a PostgreSQL connection string or URL ({}{})", field,
                                               EscapeForDisplay(why.substr(0, quote)),
                                               quote == std::string::npos ? "" : "…"));
  }
  std::string user, host, port, dbname;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view key = o->keyword;
    if (key == "user") user = o->val;
    if (key == "host" || (key == "hostaddr" && host.empty())) host = o->val;
    if (key == "port") port = o->val;
    if (key == "dbname") dbname = o->val;
  }
  PQconninfoFree(options);
  std::string out = "postgresql://";
  if (!user.empty()) out += user + "@";
  out += host.empty() ? "localhost" : host;
  if (!port.empty()) out += ":" + port;
  if (!dbname.empty()) out += "/" + dbname;
  return EscapeForDisplay(out);
}

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& dsn,
                                                            const std::string& description) {
  // Ahead of the DSN, so the DSN may override it: give up on an unreachable server after 10 s.
  // After it, so nothing overrides it: text travels as UTF-8.
  const char* keywords[] = {"connect_timeout", "application_name", "dbname", "client_encoding", nullptr};
  const char* values[] = {"10", "shardvec", dsn.c_str(), "UTF8", nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) return Status::Internal("PostgreSQL: out of memory opening a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return Status::IOError(fmt::format("cannot connect to PostgreSQL at {}: {}", description, why));
  }
  return std::unique_ptr<PgConnection>(new PgConnection(conn, description));
}

PgConnection::~PgConnection() { PQfinish(conn_); }

Status PgConnection::EnsureOpen() {
  if (PQstatus(conn_) == CONNECTION_OK) return Status::OK();
  PQreset(conn_);
  if (PQstatus(conn_) == CONNECTION_OK) return Status::OK();
  return Status::Unavailable(fmt::format("lost the connection to PostgreSQL at {} and could not reconnect: {}",
                                         description_, Trimmed(PQerrorMessage(conn_))));
}

Result<std::vector<PgRow>> PgConnection::Exec(const std::string& sql, const std::vector<PgValue>& params,
                                              std::string_view what) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const PgValue& p : params) values.push_back(p ? p->c_str() : nullptr);
  ResultPtr result(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                nullptr, nullptr, /*resultFormat=*/0));
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    const char* state = result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
    const std::string why = Trimmed(result ? PQresultErrorMessage(result.get()) : PQerrorMessage(conn_));
    std::string message = fmt::format("PostgreSQL at {}: {}: {}", description_, what, why);
    if (state == nullptr) return Status::Unavailable(std::move(message));  // no answer: the connection broke
    return FromSqlState(state, std::move(message));
  }
  std::vector<PgRow> rows;
  const int n = PQntuples(result.get());
  const int columns = PQnfields(result.get());
  rows.reserve(n);
  for (int r = 0; r < n; ++r) {
    PgRow row;
    row.reserve(columns);
    for (int c = 0; c < columns; ++c) {
      if (PQgetisnull(result.get(), r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(result.get(), r, c), PQgetlength(result.get(), r, c)));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Status PgConnection::Run(const std::string& sql, const std::vector<PgValue>& params, std::string_view what) {
  auto rows = Exec(sql, params, what);
  return rows.ok() ? Status::OK() : rows.status();
}

PgTransaction::PgTransaction(PgConnection& conn, const std::string& isolation_sql) : conn_(conn) {
  begun_ = conn_.Run("BEGIN", {}, "begin a transaction");
  open_ = begun_.ok();
  if (open_) begun_ = conn_.Run(isolation_sql, {}, "set the transaction's isolation");
}

PgTransaction::~PgTransaction() {
  if (open_) (void)conn_.Run("ROLLBACK", {}, "roll back");
}

Status PgTransaction::Commit() {
  open_ = false;
  return conn_.Run("COMMIT", {}, "commit");
}

}  // namespace shardvec
