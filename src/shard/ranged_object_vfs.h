// An SQLite VFS that reads a database straight out of a store through a RangedObject (ranged GETs
// behind a page cache), so a shard on S3 is queried without being downloaded. Read-only: a
// database opened through it must be opened read-only and immutable (no journal, no locks). A file
// is made reachable by registering its RangedObject under a name; the VFS opens only registered
// names (any other file, such as a temp file SQLite wants, goes to the default VFS).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "shardvec/object_store.h"
#include "shardvec/status.h"
#include "store/ranged_object.h"

namespace shardvec {

// The largest page SQLite allows: a read of this many bytes from offset 0 holds a database's first page.
inline constexpr int64_t kMaxSqlitePageBytes = 65536;

// The RangedObject of the SQLite file `key` of `size` bytes (checked by the caller), given `head`,
// its first min(size, kMaxSqlitePageBytes) bytes, which seed its cache: its pages are the page size
// the header declares. Corruption naming `shard_name` and the key when `head` is not an SQLite
// header or declares an impossible page size.
Result<std::shared_ptr<RangedObject>> MakeSqliteRangedObject(std::shared_ptr<ObjectStore> store,
                                                             const std::string& key, int64_t size,
                                                             std::string_view head, std::string_view shard_name,
                                                             int64_t page_cache_pages,
                                                             std::shared_ptr<RangeReadCounters> counters,
                                                             ThreadPool* pool);

// Registers the VFS (once) and returns its name for a URI's `vfs=` parameter.
Result<std::string> RangedObjectVfsName();

// Makes `object` openable as the returned absolute file name until UnregisterRangedObject; open
// connections keep it alive beyond that.
std::string RegisterRangedObject(std::shared_ptr<RangedObject> object);
void UnregisterRangedObject(const std::string& name);

// The first store error a read through the VFS met on `name` since the last call (SQLite reports
// every one as a bare "disk I/O error"), or OK.
Status TakeRangedReadError(const std::string& name);

}  // namespace shardvec
