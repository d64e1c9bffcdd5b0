// The global top-k over per-shard results (spec §4.4 step 8).
#pragma once

#include <cstdint>
#include <vector>

#include "shard/shard_searcher.h"

namespace shardvec {

// The `top_k` lowest scores over every list, stable like Python's heapq.nsmallest over the
// concatenation: ties keep list order, then position within a list. No de-duplication by id.
// top_k <= 0 gives an empty result.
std::vector<ShardHit> MergeTopK(std::vector<std::vector<ShardHit>> per_shard, int64_t top_k);

}  // namespace shardvec
