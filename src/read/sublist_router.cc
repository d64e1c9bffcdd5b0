#include "read/sublist_router.h"

#include <algorithm>
#include <cmath>

namespace shardvec {

SnapshotSublists ReadSnapshotSublists(const Manifest& manifest) {
  const nlohmann::json& custom = manifest.custom;
  if (!custom.is_object() || !custom.contains("shardvec") || !custom["shardvec"].is_object()) return {};
  const nlohmann::json& shardvec = custom["shardvec"];
  if (!shardvec.contains("sublists") || !shardvec["sublists"].is_object()) return {};
  const nlohmann::json& sublists = shardvec["sublists"];
  auto count = [&](const char* key) -> int64_t {
    if (!sublists.contains(key) || !sublists[key].is_number_integer()) return 0;
    return std::max<int64_t>(0, sublists[key].get<int64_t>());
  };
  SnapshotSublists out{count("lists"), count("shards")};
  if (out.lists <= 0 || out.shards <= 0) return {};
  return out;
}

SublistRouting DefaultSublistRouting(int64_t num_probes, int64_t max_probes, double lists_per_shard) {
  SublistRouting r;
  r.candidate_shards = std::min(max_probes, num_probes * kCandidateShardsPerProbe);
  r.candidate_shards = std::max(r.candidate_shards, std::min(num_probes, max_probes));
  r.sublist_probes = std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil(kSublistShare * static_cast<double>(num_probes) * lists_per_shard)));
  return r;
}

namespace {

bool Before(const ListCandidate& a, const ListCandidate& b) {
  if (a.score != b.score) return a.score < b.score;
  return a.slot != b.slot ? a.slot < b.slot : a.list < b.list;
}

}  // namespace

std::vector<std::vector<int32_t>> PickSublists(std::vector<ListCandidate> candidates, int64_t budget, size_t slots) {
  const auto before = Before;
  const size_t keep = std::min(candidates.size(), static_cast<size_t>(std::max<int64_t>(budget, 0)));
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(keep), candidates.end(), before);
  std::vector<std::vector<int32_t>> out(slots);
  for (size_t i = 0; i < keep; ++i) out[static_cast<size_t>(candidates[i].slot)].push_back(candidates[i].list);
  for (auto& lists : out) std::sort(lists.begin(), lists.end());
  return out;
}

std::vector<std::vector<int32_t>> PickFilteredSublists(std::vector<ListCandidate> candidates, int64_t budget,
                                                       int64_t need, size_t slots) {
  // A heap: the walk usually stops after a small share of the candidates.
  auto after = [](const ListCandidate& a, const ListCandidate& b) { return Before(b, a); };
  std::make_heap(candidates.begin(), candidates.end(), after);
  std::vector<std::vector<int32_t>> out(slots);
  int64_t taken = 0;
  int64_t passing = 0;
  for (auto end = candidates.end(); end != candidates.begin(); --end) {
    if (taken >= budget && passing >= need) break;
    std::pop_heap(candidates.begin(), end, after);
    const ListCandidate& c = *(end - 1);
    ++taken;
    if (c.passing <= 0) continue;
    passing += c.passing;
    out[static_cast<size_t>(c.slot)].push_back(c.list);
  }
  for (auto& lists : out) std::sort(lists.begin(), lists.end());
  return out;
}

void SnapshotListTable::Add(int32_t shard, const SubLists& lists, int64_t dim) {
  for (size_t list = 0; list < lists.ranges.size(); ++list) {
    const float* row = lists.centroids.vectors.row(static_cast<int64_t>(list));
    added_.insert(added_.end(), row, row + dim);
    shard_of.push_back(shard);
    list_of.push_back(static_cast<int32_t>(list));
  }
  if (!lists.ranges.empty()) rows += lists.ranges.back().end;
}

void SnapshotListTable::Finish(int64_t dim, Metric metric) {
  const auto count = static_cast<int64_t>(shard_of.size());
  centroids = CentroidTable(added_.data(), count, dim, metric);
  if (count > 0) codes.emplace(QuantizeRows(added_.data(), count, dim, centroids));
  added_ = {};
}

}  // namespace shardvec
