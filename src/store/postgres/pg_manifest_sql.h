// The SQL of the PostgreSQL manifest store, in one place: the C++ store (over libpq, "$1"
// placeholders) and the Python PostgresManifestStore (over a DB-API driver, "%s" placeholders) run
// the same statements. The tables are the reference's, so either tool reads what the other wrote:
//
//   <table>_builds   one row per manifest (run_id is its ref)
//   <table>_shards   one row per non-empty shard, keyed (run_id, db_id)
//   <pointer>        append-only: the newest row (by updated_at) names the current manifest
//
// Table names are validated identifiers ([A-Za-z_][A-Za-z0-9_]*, optionally schema-qualified),
// spelled unquoted as the reference spells them (PostgreSQL folds them to lower case); every value
// travels as a parameter.
#pragma once

#include <string>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec {

enum class SqlPlaceholders { kDollar, kPercentS };

struct PgManifestSql {
  std::string builds_table;   // <table>_builds
  std::string shards_table;   // <table>_shards
  std::string pointer_table;  // <pointer>

  // ensure_table: run in one transaction after `ensure_lock` (which serialises concurrent creators,
  // whose CREATE TABLE IF NOT EXISTS would otherwise race on the catalog).
  std::string ensure_lock;
  std::string create_builds;
  std::string create_shards;
  std::string create_pointer;
  std::string create_pointer_index;
  // (builds, shards, pointer) -> three regclass-or-NULL columns: which tables exist.
  std::string tables_exist;

  // Publish and set_current run in one transaction that starts with `read_committed` (each
  // statement then sees what committed before it), takes `lock_pointer` (self-exclusive, readers
  // unaffected), reads `current`, and only then appends the pointer. load_manifest reads build and
  // shards in one `snapshot_read` transaction.
  std::string read_committed;
  std::string snapshot_read;
  std::string lock_pointer;
  // -> (manifest_ref, updated_at, published_at): the newest pointer row; published_at is the
  // created_at of the build it names (its updated_at when that build is gone). With no pointer row,
  // the newest build (the reference's fallback). Times as "YYYY-MM-DDTHH:MM:SS.ffffffZ".
  std::string current;
  // (run_id, created_at, num_dbs, s3_prefix, key_col, db_path_template, shard_prefix, key_encoding,
  //  sharding JSON, custom JSON): a run_id that exists fails with unique_violation (never overwritten).
  std::string insert_build;
  // (run_id, db_id, db_url, attempt, row_count, db_bytes, checkpoint_id, min_key JSON, max_key JSON,
  //  writer_info JSON)
  std::string insert_shard;
  // (manifest_ref) -> updated_at: strictly after every existing row's, so the new row is the newest
  // even when clocks step back.
  std::string insert_pointer;
  // (run_id) -> one row when the build exists.
  std::string build_exists;

  // (run_id) -> the build row, sharding and custom as JSON text, created_at formatted as above.
  std::string select_build;
  // (run_id) -> (db_id, db_url, attempt, row_count, db_bytes, checkpoint_id, min_key, max_key,
  //  writer_info) ascending db_id, JSON columns as text.
  std::string select_shards;
  // (limit or NULL for all) -> (run_id, created_at) newest first.
  std::string list_builds;
};

// InvalidArgument naming table_name / pointer_table_name when one is not a usable identifier (or
// would be cut to PostgreSQL's 63 bytes once suffixed).
Result<PgManifestSql> MakePgManifestSql(std::string_view table_name, std::string_view pointer_table_name,
                                        SqlPlaceholders placeholders);

}  // namespace shardvec
