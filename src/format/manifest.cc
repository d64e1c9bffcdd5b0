#include "format/manifest.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cstring>
#include <memory>
#include <set>

#include "common/json_text.h"
#include "common/sqlite/sqlite_setup.h"
#include "common/status_macros.h"
#include "shardvec/limits.h"

namespace shardvec {
namespace {

constexpr std::string_view kSqliteMagic("SQLite format 3\0", 16);

constexpr const char* kBuildMetaDdl =
    "CREATE TABLE build_meta (\n"
    "    run_id           TEXT    NOT NULL,\n"
    "    created_at       TEXT    NOT NULL,\n"
    "    num_dbs          INTEGER NOT NULL,\n"
    "    s3_prefix        TEXT    NOT NULL,\n"
    "    key_col          TEXT    NOT NULL,\n"
    "    sharding         TEXT    NOT NULL,\n"
    "    db_path_template TEXT    NOT NULL,\n"
    "    shard_prefix     TEXT    NOT NULL,\n"
    "    format_version   INTEGER NOT NULL,\n"
    "    key_encoding     TEXT    NOT NULL,\n"
    "    custom           TEXT    NOT NULL DEFAULT '{}'\n"
    ")";

constexpr const char* kShardsDdl =
    "CREATE TABLE shards (\n"
    "    db_id         INTEGER NOT NULL PRIMARY KEY,\n"
    "    db_url        TEXT,\n"
    "    attempt       INTEGER NOT NULL,\n"
    "    row_count     INTEGER NOT NULL,\n"
    "    db_bytes      INTEGER NOT NULL,\n"
    "    min_key       TEXT,\n"
    "    max_key       TEXT,\n"
    "    checkpoint_id TEXT,\n"
    "    writer_info   TEXT    NOT NULL DEFAULT '{}'\n"
    ")";

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

Status Corrupt(std::string why) { return Status::Corruption("manifest: " + why).WithKind(ErrorKind::kManifestParse); }

Status SqlError(sqlite3* db, std::string_view what) {
  return Status::Internal(fmt::format("manifest: {}: {}", what, sqlite3_errmsg(db)));
}

Result<StmtPtr> Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    return Corrupt(fmt::format("cannot prepare '{}': {}", sql, sqlite3_errmsg(db)));
  }
  return StmtPtr(stmt);
}

void BindText(sqlite3_stmt* s, int i, std::string_view text) {
  sqlite3_bind_text(s, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

std::string ColumnText(sqlite3_stmt* s, int i) {
  const auto* p = sqlite3_column_text(s, i);
  return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s, i)) : std::string();
}

uint32_t BigEndianAt(std::string_view bytes, size_t offset, size_t width) {
  uint32_t value = 0;
  for (size_t i = 0; i < width; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[offset + i]);
  return value;
}

// SQLite reads a database cut inside its last page without complaint when the lost bytes were
// free space, so a truncated upload could pass for a manifest: the length must be whole pages,
// and exactly the header's page count when the header says that count is current.
Status CheckWholePages(std::string_view bytes) {
  constexpr size_t kHeaderBytes = 100;
  if (bytes.size() < kHeaderBytes) {
    return Corrupt(fmt::format("{} bytes is shorter than an SQLite header (truncated?)", bytes.size()));
  }
  const uint32_t raw_page_size = BigEndianAt(bytes, 16, 2);
  const size_t page_size = raw_page_size == 1 ? 65536 : raw_page_size;
  if (page_size < 512 || (page_size & (page_size - 1)) != 0) {
    return Corrupt(fmt::format("SQLite header has an invalid page size {}", raw_page_size));
  }
  const uint32_t page_count = BigEndianAt(bytes, 28, 4);
  const bool count_is_current = page_count != 0 && BigEndianAt(bytes, 24, 4) == BigEndianAt(bytes, 92, 4);
  if (bytes.size() % page_size != 0 || (count_is_current && bytes.size() != page_count * page_size)) {
    return Corrupt(fmt::format("{} bytes is not the {} pages of {} bytes its SQLite header declares (truncated?)",
                               bytes.size(), page_count, page_size));
  }
  return Status::OK();
}

// The reference's parse-time checks of the build row.
Status ValidateBuildMeta(const Manifest& m) {
  if (m.format_version != kManifestFormatVersion) {
    return Corrupt(fmt::format("format_version {} is not supported (expected 4)", m.format_version));
  }
  if (m.num_dbs <= 0) return Corrupt(fmt::format("num_dbs must be > 0 (got {})", m.num_dbs));
  if (m.num_dbs > kMaxNumDbs) {
    return Corrupt(fmt::format("num_dbs must be <= {} (got {})", kMaxNumDbs, m.num_dbs));
  }
  if (m.sharding.is_discarded() || !m.sharding.is_object()) {
    return Corrupt(fmt::format("sharding is not a JSON object nesting at most {} levels", kMaxJsonNesting));
  }
  if (m.custom.is_discarded() || !m.custom.is_object()) {
    return Corrupt(fmt::format("custom is not a JSON object nesting at most {} levels", kMaxJsonNesting));
  }
  static const std::set<std::string> kEncodings = {"u64be", "u32be", "utf8", "raw"};
  if (!kEncodings.count(m.key_encoding)) {
    return Corrupt(fmt::format("key_encoding '{}' is not one of u64be, u32be, utf8, raw", m.key_encoding));
  }
  return Status::OK();
}

// The checks of one shard row; `seen` collects the db_ids so far.
Status ValidateShard(const Manifest& m, const ManifestShard& shard, std::set<int64_t>& seen) {
  if (shard.db_id < 0 || shard.db_id >= m.num_dbs) {
    return Corrupt(fmt::format("shard db_id {} is outside [0, {})", shard.db_id, m.num_dbs));
  }
  if (shard.writer_info.is_discarded() || !shard.writer_info.is_object()) {
    return Corrupt(fmt::format("shard db_id {}: writer_info is not a JSON object nesting at most {} levels",
                               shard.db_id, kMaxJsonNesting));
  }
  if (shard.attempt < 0 || shard.row_count < 0 || shard.db_bytes < 0) {
    return Corrupt(fmt::format("shard db_id {} has a negative attempt, row_count or db_bytes", shard.db_id));
  }
  if (!seen.insert(shard.db_id).second) {
    return Corrupt(fmt::format("shard db_id {} appears twice", shard.db_id));
  }
  return Status::OK();
}

}  // namespace

// Discarded when the text is not JSON or nests deeper than we can dump without overflowing the stack.
nlohmann::json ParseManifestJson(const std::string& text) {
  if (JsonNestsDeeperThan(text)) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

Status ValidateManifest(const Manifest& m) {
  RETURN_IF_ERROR(ValidateBuildMeta(m));
  std::set<int64_t> seen;
  for (const ManifestShard& shard : m.shards) RETURN_IF_ERROR(ValidateShard(m, shard, seen));
  return Status::OK();
}

Result<std::string> SerializeManifest(const Manifest& m) {
  sqlite3* raw = nullptr;
  ConfigureSqliteOnce();
  if (sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    sqlite3_close(raw);
    return Status::Internal("manifest: cannot open an in-memory database");
  }
  DbPtr db(raw);
  for (const char* ddl : {kBuildMetaDdl, kShardsDdl}) {
    if (sqlite3_exec(db.get(), ddl, nullptr, nullptr, nullptr) != SQLITE_OK) {
      return SqlError(db.get(), "create table");
    }
  }
  {
    ASSIGN_OR_RETURN(StmtPtr stmt, Prepare(db.get(),
        "INSERT INTO build_meta (run_id, created_at, num_dbs, s3_prefix, key_col, sharding, "
        "db_path_template, shard_prefix, format_version, key_encoding, custom) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?)"));
    BindText(stmt.get(), 1, m.run_id);
    BindText(stmt.get(), 2, m.created_at);
    sqlite3_bind_int64(stmt.get(), 3, m.num_dbs);
    BindText(stmt.get(), 4, m.s3_prefix);
    BindText(stmt.get(), 5, m.key_col);
    BindText(stmt.get(), 6, PythonJsonDumps(m.sharding));
    BindText(stmt.get(), 7, m.db_path_template);
    BindText(stmt.get(), 8, m.shard_prefix);
    sqlite3_bind_int64(stmt.get(), 9, m.format_version);
    BindText(stmt.get(), 10, m.key_encoding);
    BindText(stmt.get(), 11, PythonJsonDumps(m.custom));
    if (sqlite3_step(stmt.get()) != SQLITE_DONE) return SqlError(db.get(), "insert build_meta");
  }
  {
    ASSIGN_OR_RETURN(StmtPtr stmt, Prepare(db.get(),
        "INSERT INTO shards (db_id, db_url, attempt, row_count, db_bytes, min_key, max_key, "
        "checkpoint_id, writer_info) VALUES (?,?,?,?,?,NULL,NULL,?,?)"));
    for (const ManifestShard& s : m.shards) {
      sqlite3_reset(stmt.get());
      sqlite3_clear_bindings(stmt.get());
      sqlite3_bind_int64(stmt.get(), 1, s.db_id);
      if (s.db_url) BindText(stmt.get(), 2, *s.db_url);
      sqlite3_bind_int64(stmt.get(), 3, s.attempt);
      sqlite3_bind_int64(stmt.get(), 4, s.row_count);
      sqlite3_bind_int64(stmt.get(), 5, s.db_bytes);
      if (s.checkpoint_id) BindText(stmt.get(), 6, *s.checkpoint_id);
      BindText(stmt.get(), 7, PythonJsonDumps(s.writer_info));
      if (sqlite3_step(stmt.get()) != SQLITE_DONE) {
        return SqlError(db.get(), fmt::format("insert shard db_id={}", s.db_id));
      }
    }
  }
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(db.get(), "main", &size, 0);
  if (bytes == nullptr) return SqlError(db.get(), "serialize");
  std::string out(reinterpret_cast<const char*>(bytes), static_cast<size_t>(size));
  sqlite3_free(bytes);
  return out;
}

Result<Manifest> ParseManifest(std::string_view bytes) {
  if (static_cast<int64_t>(bytes.size()) > kMaxManifestBytes) {
    return Corrupt(fmt::format("{} bytes is more than the limit of {} bytes", bytes.size(), kMaxManifestBytes));
  }
  if (bytes.size() < kSqliteMagic.size() || bytes.substr(0, kSqliteMagic.size()) != kSqliteMagic) {
    return Corrupt("unsupported manifest format: expected SQLite (magic header not found)");
  }
  RETURN_IF_ERROR(CheckWholePages(bytes));
  sqlite3* raw = nullptr;
  ConfigureSqliteOnce();
  if (sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    sqlite3_close(raw);
    return Status::Internal("manifest: cannot open an in-memory database");
  }
  DbPtr db(raw);
  RETURN_IF_ERROR(HardenUntrustedConnection(db.get()).WithContext("manifest"));
  auto* copy = static_cast<unsigned char*>(sqlite3_malloc64(bytes.size()));
  if (copy == nullptr) return Status::Internal("manifest: out of memory");
  std::memcpy(copy, bytes.data(), bytes.size());
  if (sqlite3_deserialize(db.get(), "main", copy, bytes.size(), bytes.size(),
                          SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY) != SQLITE_OK) {
    return Corrupt(fmt::format("cannot load the SQLite bytes: {}", sqlite3_errmsg(db.get())));
  }

  Manifest m;
  {
    auto stmt = Prepare(db.get(),
        "SELECT run_id, created_at, num_dbs, s3_prefix, key_col, sharding, db_path_template, "
        "shard_prefix, format_version, key_encoding, custom FROM build_meta");
    if (!stmt.ok()) return Corrupt(fmt::format("table build_meta is unreadable: {}", stmt.status().message()));
    const int rc = sqlite3_step(stmt->get());
    if (rc == SQLITE_DONE) return Corrupt("table build_meta has no row");
    if (rc != SQLITE_ROW) return Corrupt(fmt::format("build_meta: {}", sqlite3_errmsg(db.get())));
    sqlite3_stmt* s = stmt->get();
    m.run_id = ColumnText(s, 0);
    m.created_at = ColumnText(s, 1);
    m.num_dbs = sqlite3_column_int64(s, 2);
    m.s3_prefix = ColumnText(s, 3);
    m.key_col = ColumnText(s, 4);
    m.sharding = ParseManifestJson(ColumnText(s, 5));
    m.db_path_template = ColumnText(s, 6);
    m.shard_prefix = ColumnText(s, 7);
    m.format_version = sqlite3_column_int64(s, 8);
    m.key_encoding = ColumnText(s, 9);
    m.custom = ParseManifestJson(ColumnText(s, 10));
  }
  RETURN_IF_ERROR(ValidateBuildMeta(m));

  auto stmt = Prepare(db.get(),
      "SELECT db_id, db_url, attempt, row_count, db_bytes, checkpoint_id, writer_info FROM shards "
      "ORDER BY db_id");
  if (!stmt.ok()) return Corrupt(fmt::format("table shards is unreadable: {}", stmt.status().message()));
  std::set<int64_t> seen;
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    sqlite3_stmt* s = stmt->get();
    ManifestShard shard;
    shard.db_id = sqlite3_column_int64(s, 0);
    if (sqlite3_column_type(s, 1) != SQLITE_NULL) shard.db_url = ColumnText(s, 1);
    shard.attempt = sqlite3_column_int64(s, 2);
    shard.row_count = sqlite3_column_int64(s, 3);
    shard.db_bytes = sqlite3_column_int64(s, 4);
    if (sqlite3_column_type(s, 5) != SQLITE_NULL) shard.checkpoint_id = ColumnText(s, 5);
    shard.writer_info = ParseManifestJson(ColumnText(s, 6));
    RETURN_IF_ERROR(ValidateShard(m, shard, seen));
    m.shards.push_back(std::move(shard));
  }
  if (rc != SQLITE_DONE) return Corrupt(fmt::format("shards: {}", sqlite3_errmsg(db.get())));
  return m;
}

Result<std::optional<std::string>> RecordedDigest(const Manifest& manifest, std::string_view table,
                                                  const std::string& name) {
  const nlohmann::json& custom = manifest.custom;
  const std::string field(table);
  if (!custom.contains("shardvec") || !custom["shardvec"].is_object() || !custom["shardvec"].contains(field)) {
    return std::optional<std::string>();
  }
  auto corrupt = [](std::string msg) { return Status::Corruption(std::move(msg)).WithKind(ErrorKind::kManifestParse); };
  const nlohmann::json& digests = custom["shardvec"][field];
  if (!digests.is_object()) {
    return corrupt(fmt::format("manifest custom.shardvec.{} must be an object (got {})", field, digests.dump()));
  }
  if (!digests.contains(name)) return std::optional<std::string>();
  if (!digests[name].is_string()) {
    return corrupt(fmt::format("manifest custom.shardvec.{}.{} must be a string (got {})", field, name,
                               digests[name].dump()));
  }
  return std::optional<std::string>(digests[name].get<std::string>());
}

}  // namespace shardvec
