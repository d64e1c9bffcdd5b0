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

std::vector<std::vector<int32_t>> PickSublists(std::vector<ListCandidate> candidates, int64_t budget, size_t slots) {
  auto before = [](const ListCandidate& a, const ListCandidate& b) {
    if (a.score != b.score) return a.score < b.score;
    return a.slot != b.slot ? a.slot < b.slot : a.list < b.list;
  };
  const size_t keep = std::min(candidates.size(), static_cast<size_t>(std::max<int64_t>(budget, 0)));
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(keep), candidates.end(), before);
  std::vector<std::vector<int32_t>> out(slots);
  for (size_t i = 0; i < keep; ++i) out[static_cast<size_t>(candidates[i].slot)].push_back(candidates[i].list);
  for (auto& lists : out) std::sort(lists.begin(), lists.end());
  return out;
}

}  // namespace shardvec
