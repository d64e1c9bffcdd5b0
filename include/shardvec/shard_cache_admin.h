// The reader's shard cache folder as an operator sees it: what it holds and pruning it to a byte
// budget. A shard a live reader's snapshot uses (in any process) is never removed: each such reader
// holds its shard folder's use lock shared, and a folder is removed only under that lock taken
// exclusively.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shardvec/status.h"

namespace shardvec {

// The default byte budget of a reader's shard cache (ReaderOptions::max_cache_bytes): 2 GiB.
inline constexpr int64_t kDefaultMaxCacheBytes = int64_t{2} << 30;

struct CachedShardFolder {
  std::string name;        // "db=00003-<identity>"
  int64_t bytes = 0;       // the regular files in it (the shard and any partial download)
  int64_t last_used_unix_ns = 0;  // when a reader last opened it (the folder's mtime, in ns)
  bool in_use = false;     // a live reader's snapshot uses it (its use lock is held)
};

struct ShardCachePruneResult {
  int64_t removed_folders = 0;
  int64_t removed_bytes = 0;
  int64_t kept_folders = 0;
  int64_t kept_bytes = 0;    // what the folder holds afterwards, in use or not
  int64_t in_use_bytes = 0;  // of which a live snapshot uses (never removed, even above the budget)
};

// The shard folders of `cache_dir`, least recently used first. NotFound when the folder does not
// exist; a folder another user owns or others may write is refused as the reader refuses it.
Result<std::vector<CachedShardFolder>> ListShardCache(const std::string& cache_dir);

// Removes unused shard folders, least recently used first, until the folder holds at most
// `max_bytes` (>= 0; 0 removes every unused one). Folders in use are kept whatever their size.
Result<ShardCachePruneResult> PruneShardCache(const std::string& cache_dir, int64_t max_bytes);

}  // namespace shardvec
