#include "read/merge.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>

namespace shardvec {
namespace {

// Lower scores first; NaN (never produced by a searcher) sorts last so the order stays strict weak.
bool ScoreLess(double a, double b) {
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  return a < b;
}

}  // namespace

std::vector<ShardHit> MergeTopK(std::vector<std::vector<ShardHit>> per_shard, int64_t top_k) {
  if (top_k <= 0) return {};
  std::vector<ShardHit> all;
  size_t total = 0;
  for (const auto& hits : per_shard) total += hits.size();
  all.reserve(total);
  for (auto& hits : per_shard) std::move(hits.begin(), hits.end(), std::back_inserter(all));

  // Sorting positions in the concatenation, with the position as tie-break, makes any partial sort
  // stable; only the first `keep` are ordered.
  const size_t keep = std::min(total, static_cast<size_t>(top_k));
  std::vector<size_t> order(total);
  std::iota(order.begin(), order.end(), size_t{0});
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                    [&all](size_t a, size_t b) {
                      if (ScoreLess(all[a].score, all[b].score)) return true;
                      if (ScoreLess(all[b].score, all[a].score)) return false;
                      return a < b;
                    });
  std::vector<ShardHit> merged;
  merged.reserve(keep);
  for (size_t i = 0; i < keep; ++i) merged.push_back(std::move(all[order[i]]));
  return merged;
}

}  // namespace shardvec
