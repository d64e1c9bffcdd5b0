#include "write/base_shard.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cstring>
#include <memory>

#include "common/digest.h"
#include "common/sqlite/sqlite_setup.h"
#include "common/sqlite/sqlite_statement.h"
#include "common/status_macros.h"
#include "shard/shard_searcher.h"
#include "shard/sqlite_vec.h"
#include "shard/sublists.h"

namespace shardvec {
namespace {

struct CloseDb {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using DbHandle = std::unique_ptr<sqlite3, CloseDb>;

Result<DbHandle> OpenReadOnly(const std::filesystem::path& file, std::string_view name) {
  RETURN_IF_ERROR(EnsureSqliteVecLoaded());
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  DbHandle db(raw);
  if (rc != SQLITE_OK) {
    return Status::IOError(fmt::format("shard {}: cannot open '{}': {}", name, file.string(),
                                       raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  RETURN_IF_ERROR(HardenUntrustedConnection(db.get()).WithContext(fmt::format("shard {}", name)));
  return db;
}

Status SqlError(sqlite3* db, std::string_view name, std::string_view what) {
  return Status::Corruption(fmt::format("shard {}: {}: {}", name, what, sqlite3_errmsg(db)));
}

std::string_view ColumnText(const SqliteStatement& stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), column));
  return text == nullptr ? std::string_view() : std::string_view(text, static_cast<size_t>(sqlite3_column_bytes(stmt.get(), column)));
}

}  // namespace

Status FetchShardFile(ObjectStore& store, const ShardLocation& loc, const std::filesystem::path& dest) {
  RETURN_IF_ERROR(store.GetToScratchFile(loc.key, dest, loc.size).WithContext(fmt::format("downloading shard {}", loc.db_id)));
  ASSIGN_OR_RETURN(FileDigest got, DigestFile(dest));
  if (got.size != loc.size) {
    return Status::Corruption(fmt::format("shard {} has {} bytes in '{}', the manifest records {}", loc.db_id,
                                          got.size, store.Url(loc.key), loc.size));
  }
  if (loc.digest && got.digest != *loc.digest) {
    return Status::Corruption(fmt::format("shard {} has digest {} in '{}', the manifest records {}", loc.db_id,
                                          got.digest, store.Url(loc.key), *loc.digest));
  }
  return Status::OK();
}

struct ShardRowCursor::Impl {
  DbHandle db;
  std::unique_ptr<SqliteStatement> stmt;  // declared after db: finalized before the connection closes
  std::string name;
  int64_t dim = 0;
  bool with_vectors = false;
  std::vector<float> vector;
};

ShardRowCursor::ShardRowCursor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ShardRowCursor::ShardRowCursor(ShardRowCursor&&) noexcept = default;
ShardRowCursor& ShardRowCursor::operator=(ShardRowCursor&&) noexcept = default;
ShardRowCursor::~ShardRowCursor() = default;

Result<ShardRowCursor> ShardRowCursor::Open(const std::filesystem::path& file, std::string_view name, int64_t dim,
                                            bool with_vectors) {
  auto impl = std::make_unique<Impl>();
  ASSIGN_OR_RETURN(impl->db, OpenReadOnly(file, name));
  const char* sql = with_vectors
                        ? "SELECT v.rowid, m.original_id, v.embedding, p.payload FROM vec_index AS v "
                          "JOIN vec_id_map AS m ON m.internal_id = v.rowid "
                          "LEFT JOIN vec_payloads AS p ON p.rowid = v.rowid ORDER BY v.rowid"
                        : "SELECT internal_id, original_id FROM vec_id_map ORDER BY internal_id";
  impl->stmt = std::make_unique<SqliteStatement>(impl->db.get(), sql);
  if (!impl->stmt->ok()) return SqlError(impl->db.get(), name, "reading its rows");
  impl->name = std::string(name);
  impl->dim = dim;
  impl->with_vectors = with_vectors;
  impl->vector.resize(with_vectors ? static_cast<size_t>(dim) : 0);
  return ShardRowCursor(std::move(impl));
}

Result<bool> ShardRowCursor::Next(BaseRow* row) {
  Impl& c = *impl_;
  SqliteStatement& stmt = *c.stmt;
  const int rc = stmt.Step();
  if (rc == SQLITE_DONE) return false;
  if (rc != SQLITE_ROW) return SqlError(c.db.get(), c.name, "reading its rows");
  const int64_t rowid = stmt.Int(0);
  Result<RecordId> id = DecodeOriginalId(ColumnText(stmt, 1));
  if (!id.ok()) return id.status().WithContext(fmt::format("shard {}, rowid {}", c.name, rowid));
  row->id = std::move(id).value();
  if (c.with_vectors) {
    const size_t vector_bytes = static_cast<size_t>(c.dim) * sizeof(float);
    const std::string_view blob = stmt.Blob(2);
    if (blob.size() != vector_bytes) {
      return Status::Corruption(fmt::format("shard {}, rowid {}: its vector has {} bytes, dim {} needs {}", c.name,
                                            rowid, blob.size(), c.dim, vector_bytes));
    }
    std::memcpy(c.vector.data(), blob.data(), vector_bytes);
    row->vector = c.vector;
    if (sqlite3_column_type(stmt.get(), 3) == SQLITE_NULL) {
      row->payload.reset();
    } else {
      row->payload = std::string(ColumnText(stmt, 3));
    }
  }
  return true;
}

Status ReadShardRows(const std::filesystem::path& file, std::string_view name, int64_t dim, bool with_vectors,
                     const std::function<Status(const BaseRow&)>& visit) {
  ASSIGN_OR_RETURN(ShardRowCursor cursor, ShardRowCursor::Open(file, name, dim, with_vectors));
  BaseRow row;
  while (true) {
    ASSIGN_OR_RETURN(const bool more, cursor.Next(&row));
    if (!more) return Status::OK();
    RETURN_IF_ERROR(visit(row));
  }
}

Result<int64_t> ShardFileSublists(const std::filesystem::path& file, std::string_view name) {
  ASSIGN_OR_RETURN(DbHandle db, OpenReadOnly(file, name));
  SqliteStatement exists(db.get(), "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?");
  if (!exists.ok()) return SqlError(db.get(), name, "reading its schema");
  sqlite3_bind_text(exists.get(), 1, kSublistsTable.data(), static_cast<int>(kSublistsTable.size()), SQLITE_STATIC);
  if (exists.Step() != SQLITE_ROW) return SqlError(db.get(), name, "reading its schema");
  if (exists.Int(0) == 0) return int64_t{0};
  // As a reader takes them: a further range an update added to a list (its centroid the list's
  // list_id) is that list, and only lists that hold a row count.
  SqliteStatement count(db.get(), fmt::format("SELECT count(*) FROM {0} AS s WHERE typeof(s.centroid) = 'blob' AND "
                                              "EXISTS (SELECT 1 FROM {0} AS t JOIN vec_id_map AS m ON m.internal_id >= "
                                              "t.rowid_lo AND m.internal_id < t.rowid_hi WHERE t.list_id = s.list_id OR "
                                              "(typeof(t.centroid) = 'integer' AND t.centroid = s.list_id))",
                                              kSublistsTable));
  if (!count.ok() || count.Step() != SQLITE_ROW) return SqlError(db.get(), name, "counting its sub-lists");
  return count.Int(0);
}

}  // namespace shardvec
