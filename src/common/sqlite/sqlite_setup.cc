#include "common/sqlite/sqlite_setup.h"

#include <fmt/format.h>
#include <sqlite3.h>

namespace shardvec {

bool ConfigureSqliteOnce() {
  static const bool applied = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  return applied;
}

Status HardenUntrustedConnection(sqlite3* db) {
  struct Setting {
    int op;
    int value;
    const char* name;
  };
  static constexpr Setting kSettings[] = {
      {SQLITE_DBCONFIG_DEFENSIVE, 1, "SQLITE_DBCONFIG_DEFENSIVE"},
      {SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, "SQLITE_DBCONFIG_TRUSTED_SCHEMA"},
      {SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, "SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION"},
      {SQLITE_DBCONFIG_ENABLE_VIEW, 0, "SQLITE_DBCONFIG_ENABLE_VIEW"},
      {SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, "SQLITE_DBCONFIG_ENABLE_TRIGGER"},
  };
  for (const Setting& s : kSettings) {
    int now = -1;
    // Read back what SQLite applied: an unknown option is refused, not silently ignored.
    if (sqlite3_db_config(db, s.op, s.value, &now) != SQLITE_OK || now != s.value) {
      return Status::Internal(fmt::format("SQLite refused {}={} (now {}): {}", s.name, s.value, now,
                                          sqlite3_errmsg(db)));
    }
  }
  return Status::OK();
}

}  // namespace shardvec
