#include "common/sqlite_setup.h"

#include <sqlite3.h>

namespace shardvec {

bool ConfigureSqliteOnce() {
  static const bool applied = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  return applied;
}

}  // namespace shardvec
