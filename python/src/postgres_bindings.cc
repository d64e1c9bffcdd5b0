// The PostgreSQL manifest store for Python: its SQL for PostgresManifestStore (shardvec.db_manifest_store),
// so the DB-API class and the C++ store over libpq run the very same statements, and the libpq store
// itself (a DSN instead of a connection factory).
#include <nanobind/stl/map.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>

#include <map>

#include "engine_common.h"
#include "shardvec/manifest_store.h"
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
  m.def(
      "postgres_manifest_store",
      [](const std::string& dsn, const std::string& table_name, const std::string& pointer_table_name,
         bool ensure_table) {
        nb::gil_scoped_release release;
        return std::shared_ptr<ManifestStore>(
            Unwrap(OpenPostgresManifestStore(dsn, {table_name, pointer_table_name, ensure_table})));
      },
      nb::arg("dsn"), nb::arg("table_name") = "shardyfusion_manifests",
      nb::arg("pointer_table_name") = "shardyfusion_pointer", nb::arg("ensure_table") = true,
      "The C++ PostgreSQL manifest store over libpq, reached with a DSN.");
  m.def(
      "check_manifest_json", [](const std::string& manifest_json) { (void)Unwrap(ManifestFromJson(manifest_json)); },
      nb::arg("manifest_json"),
      "Checks a manifest in shardvec.manifest's JSON form as a stored one is checked (ManifestParseError "
      "naming the field when it does not validate).");
}

}  // namespace shardvec::py
