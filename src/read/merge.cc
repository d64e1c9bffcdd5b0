#include "read/merge.h"

#include <algorithm>
#include <cmath>

namespace shardvec {
namespace {

// Lower scores first; NaN (never produced by a searcher) sorts last so the order stays strict weak.
bool ScoreLess(double a, double b) {
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  return a < b;
}

}  // namespace

std::vector<MergedRef> MergeTopK(const std::vector<std::vector<ScanHit>>& lists, int64_t top_k) {
  if (top_k <= 0) return {};
  std::vector<MergedRef> all;
  for (size_t list = 0; list < lists.size(); ++list) {
    for (size_t index = 0; index < lists[list].size(); ++index) all.push_back(MergedRef{list, index});
  }
  auto score = [&lists](const MergedRef& ref) { return lists[ref.list][ref.index].score; };
  // References are generated in concatenation order, so comparing them breaks ties stably and
  // any partial sort then equals a stable sort; only the first `keep` are ordered.
  const size_t keep = std::min(all.size(), static_cast<size_t>(top_k));
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep), all.end(),
                    [&score](const MergedRef& a, const MergedRef& b) {
                      if (ScoreLess(score(a), score(b))) return true;
                      if (ScoreLess(score(b), score(a))) return false;
                      return a.list != b.list ? a.list < b.list : a.index < b.index;
                    });
  all.resize(keep);
  return all;
}

}  // namespace shardvec
