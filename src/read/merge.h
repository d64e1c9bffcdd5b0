// The global top-k over per-shard results (docs/architecture.md#search).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "shard/scan_kernel.h"

namespace shardvec {

// Where a merged hit came from: lists[list][index].
struct MergedRef {
  size_t list = 0;
  size_t index = 0;
  bool operator==(const MergedRef&) const = default;
};

// The `top_k` lowest scores over every list, stable like Python's heapq.nsmallest over the
// concatenation: ties keep list order, then position within a list. No de-duplication by id.
// top_k <= 0 gives an empty result.
std::vector<MergedRef> MergeTopK(const std::vector<std::vector<ScanHit>>& lists, int64_t top_k);

}  // namespace shardvec
