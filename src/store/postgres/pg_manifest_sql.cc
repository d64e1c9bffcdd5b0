#include "store/postgres/pg_manifest_sql.h"

#include <fmt/format.h>

#include "shardvec/text.h"

namespace shardvec {
namespace {

// PostgreSQL keeps the first 63 bytes of an identifier (NAMEDATALEN - 1) and drops the rest.
constexpr size_t kMaxIdentifierBytes = 63;

bool IsIdentifier(std::string_view part) {
  if (part.empty()) return false;
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!letter(part[0])) return false;
  for (char c : part) {
    if (!letter(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

// `name` is "table" or "schema.table"; the table part, once `suffix` is appended (and `prefix`
// prepended, for the index the reference names after the pointer table), must fit 63 bytes.
Status CheckTableName(std::string_view field, std::string_view name, size_t extra_bytes) {
  const size_t dot = name.find('.');
  const std::string_view schema = dot == std::string_view::npos ? std::string_view() : name.substr(0, dot);
  const std::string_view table = dot == std::string_view::npos ? name : name.substr(dot + 1);
  const bool ok = IsIdentifier(table) && (dot == std::string_view::npos || IsIdentifier(schema)) &&
                  schema.size() <= kMaxIdentifierBytes;
  if (!ok) {
    return Status::InvalidArgument(fmt::format(
        "{} '{}' is not a table name: use letters, digits and '_' (not starting with a digit), "
        "optionally as schema.table", field, EscapeForDisplay(name)));
  }
  if (table.size() + extra_bytes > kMaxIdentifierBytes) {
    return Status::InvalidArgument(fmt::format(
        "{} '{}' is too long: with the store's suffixes its tables' names would pass PostgreSQL's {} "
        "bytes (keep it to {} bytes)", field, name, kMaxIdentifierBytes, kMaxIdentifierBytes - extra_bytes));
  }
  return Status::OK();
}

std::string_view TablePart(std::string_view name) {
  const size_t dot = name.find('.');
  return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

// A timestamptz column as the layout prints times: "2026-03-14T10:30:00.000000Z".
std::string Utc(std::string_view column) {
  return fmt::format("to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", column);
}

}  // namespace

Result<PgManifestSql> MakePgManifestSql(std::string_view table_name, std::string_view pointer_table_name,
                                        SqlPlaceholders placeholders) {
  if (Status s = CheckTableName("table_name", table_name, 7); !s.ok()) return s;  // "_builds", "_shards"
  if (Status s = CheckTableName("pointer_table_name", pointer_table_name, 15); !s.ok()) {  // idx_…_updated_at
    return s;
  }
  const auto p = [placeholders](int i) {
    return placeholders == SqlPlaceholders::kDollar ? fmt::format("${}", i) : std::string("%s");
  };
  PgManifestSql q;
  q.builds_table = fmt::format("{}_builds", table_name);
  q.shards_table = fmt::format("{}_shards", table_name);
  q.pointer_table = std::string(pointer_table_name);
  const std::string& b = q.builds_table;
  const std::string& s = q.shards_table;
  const std::string& ptr = q.pointer_table;

  q.ensure_lock = fmt::format("SELECT pg_advisory_xact_lock(hashtext({}))", p(1));
  q.create_builds = fmt::format(
      "CREATE TABLE IF NOT EXISTS {} ("
      "  run_id           TEXT PRIMARY KEY,"
      "  created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),"
      "  num_dbs          INTEGER NOT NULL,"
      "  s3_prefix        TEXT NOT NULL,"
      "  key_col          TEXT NOT NULL DEFAULT '_key',"
      "  db_path_template TEXT NOT NULL DEFAULT 'db={{db_id:05d}}',"
      "  shard_prefix     TEXT NOT NULL DEFAULT 'shards',"
      "  key_encoding     TEXT NOT NULL DEFAULT 'u64be',"
      "  sharding         JSONB NOT NULL,"
      "  custom           JSONB NOT NULL DEFAULT '{{}}'"
      ")", b);
  q.create_shards = fmt::format(
      "CREATE TABLE IF NOT EXISTS {} ("
      "  run_id        TEXT NOT NULL REFERENCES {}(run_id),"
      "  db_id         INTEGER NOT NULL,"
      "  db_url        TEXT,"
      "  attempt       INTEGER NOT NULL DEFAULT 0,"
      "  row_count     INTEGER NOT NULL DEFAULT 0,"
      "  db_bytes      BIGINT  NOT NULL DEFAULT 0,"
      "  checkpoint_id TEXT,"
      "  min_key       JSONB,"
      "  max_key       JSONB,"
      "  writer_info   JSONB,"
      "  PRIMARY KEY (run_id, db_id)"
      ")", s, b);
  q.create_pointer = fmt::format(
      "CREATE TABLE IF NOT EXISTS {} ("
      "  updated_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),"
      "  manifest_ref  TEXT NOT NULL"
      ")", ptr);
  q.create_pointer_index = fmt::format("CREATE INDEX IF NOT EXISTS idx_{}_updated_at ON {} (updated_at DESC)",
                                       TablePart(ptr), ptr);
  q.tables_exist = fmt::format("SELECT to_regclass({})::text, to_regclass({})::text, to_regclass({})::text",
                               p(1), p(2), p(3));

  q.read_committed = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";
  q.snapshot_read = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY";
  q.lock_pointer = fmt::format("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE", ptr);
  q.current = fmt::format(
      "(SELECT p.manifest_ref, {}, {} FROM {} p LEFT JOIN {} b ON b.run_id = p.manifest_ref "
      "ORDER BY p.updated_at DESC LIMIT 1) "
      "UNION ALL "
      "(SELECT run_id, {}, {} FROM {} WHERE NOT EXISTS (SELECT 1 FROM {}) "
      "ORDER BY created_at DESC, run_id DESC LIMIT 1) "
      "LIMIT 1",
      Utc("p.updated_at"), Utc("COALESCE(b.created_at, p.updated_at)"), ptr, b,
      Utc("created_at"), Utc("created_at"), b, ptr);
  q.insert_build = fmt::format(
      "INSERT INTO {} (run_id, created_at, num_dbs, s3_prefix, key_col, db_path_template, shard_prefix, "
      "key_encoding, sharding, custom) VALUES ({}, {}::timestamptz, {}::integer, {}, {}, {}, {}, {}, "
      "{}::jsonb, {}::jsonb)",
      b, p(1), p(2), p(3), p(4), p(5), p(6), p(7), p(8), p(9), p(10));
  q.insert_shard = fmt::format(
      "INSERT INTO {} (run_id, db_id, db_url, attempt, row_count, db_bytes, checkpoint_id, min_key, max_key, "
      "writer_info) VALUES ({}, {}::integer, {}, {}::integer, {}::integer, {}::bigint, {}, {}::jsonb, "
      "{}::jsonb, {}::jsonb)",
      s, p(1), p(2), p(3), p(4), p(5), p(6), p(7), p(8), p(9), p(10));
  q.insert_pointer = fmt::format(
      "INSERT INTO {0} (updated_at, manifest_ref) "
      "SELECT GREATEST(clock_timestamp(), COALESCE((SELECT MAX(updated_at) FROM {0}) + INTERVAL '1 microsecond', "
      "clock_timestamp())), {1} RETURNING {2}",
      ptr, p(1), Utc("updated_at"));
  q.build_exists = fmt::format("SELECT 1 FROM {} WHERE run_id = {}", b, p(1));
  q.select_build = fmt::format(
      "SELECT run_id, {}, num_dbs, s3_prefix, key_col, db_path_template, shard_prefix, key_encoding, "
      "sharding::text, custom::text FROM {} WHERE run_id = {}",
      Utc("created_at"), b, p(1));
  q.select_shards = fmt::format(
      "SELECT db_id, db_url, attempt, row_count, db_bytes, checkpoint_id, min_key::text, max_key::text, "
      "writer_info::text FROM {} WHERE run_id = {} ORDER BY db_id",
      s, p(1));
  q.list_builds = fmt::format("SELECT run_id, {} FROM {} ORDER BY created_at DESC, run_id DESC LIMIT {}::bigint",
                              Utc("created_at"), b, p(1));
  return q;
}

}  // namespace shardvec
