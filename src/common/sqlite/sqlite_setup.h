// Process-wide SQLite settings, applied once before SQLite first initialises, and the settings of a
// connection that reads a file someone else wrote.
#pragma once

#include "shardvec/status.h"

struct sqlite3;

namespace shardvec {

// Turns off SQLite's memory statistics: with them on, every allocation in every connection takes
// one global mutex, which serialises parallel shard builds (measured: 2 threads building 2 shards
// ran 0.69x as fast as 1; with them off, 1.98x). Has no effect once SQLite is initialised (e.g. by
// another library in the process first), so the engine calls it before its first SQLite use and
// the Python module at import. Returns whether the setting took effect.
bool ConfigureSqliteOnce();

// Shards and manifests come from a store anyone with write access may have filled, so before a
// connection reads one: defensive mode on (no writes to shadow tables or the schema), the schema
// untrusted (functions and virtual tables used by views or triggers must be innocuous), views and
// triggers off (we only read our own tables, never through a view), and SQL's load_extension() off
// (vec0 reaches every connection through sqlite3_auto_extension, not through SQL).
Status HardenUntrustedConnection(sqlite3* db);

}  // namespace shardvec
