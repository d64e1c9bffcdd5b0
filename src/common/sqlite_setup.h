// Process-wide SQLite settings, applied once before SQLite first initialises.
#pragma once

namespace shardvec {

// Turns off SQLite's memory statistics: with them on, every allocation in every connection takes
// one global mutex, which serialises parallel shard builds (measured: 2 threads building 2 shards
// ran 0.69x as fast as 1; with them off, 1.98x). Has no effect once SQLite is initialised (e.g. by
// another library in the process first), so the engine calls it before its first SQLite use and
// the Python module at import. Returns whether the setting took effect.
bool ConfigureSqliteOnce();

}  // namespace shardvec
