// The PostgreSQL manifest store's SQL for the Python PostgresManifestStore (shardvec.db_manifest_store),
// so the DB-API class and the C++ store over libpq run the very same statements.
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>

#include <map>

#include "engine_common.h"
#include "store/postgres/pg_manifest_sql.h"

namespace shardvec::py {

void BindPostgres(nb::module_& m) {
  m.def(
      "postgres_manifest_sql",
      [](const std::string& table_name, const std::string& pointer_table_name) {
        PgManifestSql q = Unwrap(MakePgManifestSql(table_name, pointer_table_name, SqlPlaceholders::kPercentS));
        return std::map<std::string, std::string>{
            {"builds_table", q.builds_table}, {"shards_table", q.shards_table},
            {"pointer_table", q.pointer_table}, {"ensure_lock", q.ensure_lock},
            {"create_builds", q.create_builds}, {"create_shards", q.create_shards},
            {"create_pointer", q.create_pointer}, {"create_pointer_index", q.create_pointer_index},
            {"tables_exist", q.tables_exist}, {"read_committed", q.read_committed},
            {"snapshot_read", q.snapshot_read}, {"lock_pointer", q.lock_pointer}, {"current", q.current},
            {"insert_build", q.insert_build}, {"insert_shard", q.insert_shard},
            {"insert_pointer", q.insert_pointer}, {"build_exists", q.build_exists},
            {"select_build", q.select_build}, {"select_shards", q.select_shards},
            {"list_builds", q.list_builds}};
      },
      nb::arg("table_name"), nb::arg("pointer_table_name"),
      "The PostgreSQL manifest store's statements for these table names, with DB-API %s placeholders "
      "(ConfigValidationError naming table_name / pointer_table_name for a name that is not an identifier).");
}

}  // namespace shardvec::py
