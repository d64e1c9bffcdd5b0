#include "read/filter_call.h"

#include <fmt/format.h>

#include "common/status_macros.h"
#include "shard/filter_prune.h"

namespace shardvec {

std::map<int64_t, ShardFilterStats> ReadFilterStats(const Manifest& manifest) {
  std::map<int64_t, ShardFilterStats> out;
  const nlohmann::json& custom = manifest.custom;
  if (!custom.is_object() || !custom.contains("shardvec") || !custom["shardvec"].is_object()) return out;
  const auto stats = custom["shardvec"].find("filter_stats");
  if (stats == custom["shardvec"].end() || !stats->is_object()) return out;
  for (const ManifestShard& shard : manifest.shards) {
    const auto it = stats->find(std::to_string(shard.db_id));
    if (it == stats->end() || !it->is_object()) continue;
    out[shard.db_id] = ShardFilterStats{*it, shard.row_count};
  }
  return out;
}

FilterCall::FilterCall(const FilterPredicate& predicate, const std::map<int64_t, ShardFilterStats>& stats,
                       FilterBitmapCache& cache, uint64_t generation)
    : predicate_(predicate), cache_(cache), generation_(generation) {
  for (const auto& [db_id, shard] : stats) {
    if (FilterProvesNoMatch(predicate, shard.columns, shard.rows)) pruned_.insert(db_id);
  }
}

Result<std::shared_ptr<const FilterBitmap>> FilterCall::Bitmap(const ShardLocation& loc,
                                                              const ShardSearcher& searcher) {
  Slot* slot = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::unique_ptr<Slot>& s = slots_[loc.db_id];
    if (!s) s = std::make_unique<Slot>();
    slot = s.get();
  }
  // One evaluation per shard: other tasks wanting this shard's bitmap wait for it.
  std::lock_guard<std::mutex> lock(slot->mu);
  if (slot->bitmap) return slot->bitmap;
  if (auto kept = cache_.Find(generation_, loc.db_id, predicate_.canonical())) {
    slot->bitmap = std::move(kept);
    return slot->bitmap;
  }
  const FilterColumns* columns = searcher.filter_columns();
  if (columns == nullptr) {
    return Status::Corruption(fmt::format(
        "shard {}: the manifest declares filter columns, but the shard holds none a filter can read", loc.db_id));
  }
  auto bitmap = std::make_shared<FilterBitmap>();
  ASSIGN_OR_RETURN(bitmap->bits, predicate_.Evaluate(*columns, fmt::format("{}", loc.db_id)));
  bitmap->passing = CountRows(bitmap->bits);
  if (const SubLists* sublists = searcher.sublists()) {
    bitmap->list_passing.reserve(sublists->ranges.size());
    for (const RowRange& range : sublists->ranges) bitmap->list_passing.push_back(CountSet(bitmap->bits, range));
  }
  cache_.CountEvaluation();
  cache_.Insert(generation_, loc.db_id, predicate_.canonical(), bitmap);
  slot->bitmap = std::move(bitmap);
  return slot->bitmap;
}

}  // namespace shardvec
