// An SQLite VFS that reads a database straight out of a store through a RangedObject (ranged GETs
// behind a page cache), so a shard on S3 is queried without being downloaded. Read-only: a
// database opened through it must be opened read-only and immutable (no journal, no locks). A file
// is made reachable by registering its RangedObject under a name; the VFS opens only registered
// names (any other file, such as a temp file SQLite wants, goes to the default VFS).
#pragma once

#include <memory>
#include <string>

#include "shardvec/status.h"
#include "store/ranged_object.h"

namespace shardvec {

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
