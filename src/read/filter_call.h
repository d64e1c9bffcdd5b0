// One filtered search call's view of its filter: which shards the manifest's statistics rule out
// (shard/filter_prune.h), and each searched shard's bitmap of passing rows, evaluated at most once
// per call however many queries and scan tasks use it (and kept across calls in the reader's
// FilterBitmapCache).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "read/filter_bitmap_cache.h"
#include "read/shard_cache.h"
#include "shard/filter_predicate.h"
#include "shard/shard_searcher.h"
#include "shardvec/manifest.h"
#include "shardvec/status.h"

namespace shardvec {

// A snapshot's filter statistics by db_id: custom["shardvec"]["filter_stats"][db_id] ({column:
// stats}) and the shard's row count. Shards without statistics (or a manifest whose statistics are
// not objects) are absent: nothing is pruned there.
struct ShardFilterStats {
  nlohmann::json columns;
  int64_t rows = 0;
};
std::map<int64_t, ShardFilterStats> ReadFilterStats(const Manifest& manifest);

class FilterCall {
 public:
  // `cache` keeps bitmaps across calls (and counts evaluations), `generation` is the snapshot's.
  // Every argument must outlive the call.
  FilterCall(const FilterPredicate& predicate, const std::map<int64_t, ShardFilterStats>& stats,
             FilterBitmapCache& cache, uint64_t generation);

  const FilterPredicate& predicate() const { return predicate_; }
  // True when the statistics prove that shard `db_id` holds no passing row.
  bool Pruned(int64_t db_id) const { return pruned_.contains(db_id); }
  bool AnyPruned() const { return !pruned_.empty(); }

  // The passing rows of `searcher`, the open shard `loc`: from this call, else from the cache, else
  // evaluated over its filter columns (Corruption when it has none).
  Result<std::shared_ptr<const FilterBitmap>> Bitmap(const ShardLocation& loc, const ShardSearcher& searcher);

 private:
  struct Slot {
    std::mutex mu;
    std::shared_ptr<const FilterBitmap> bitmap;
  };

  const FilterPredicate& predicate_;
  FilterBitmapCache& cache_;
  const uint64_t generation_;
  std::set<int64_t> pruned_;
  std::mutex mu_;
  std::map<int64_t, std::unique_ptr<Slot>> slots_;  // by db_id
};

}  // namespace shardvec
