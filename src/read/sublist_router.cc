#include "read/sublist_router.h"

#include <algorithm>
#include <cmath>

#include "common/status_macros.h"

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

Status SnapshotListTable::Finish(int64_t dim, Metric metric) {
  const auto count = static_cast<int64_t>(shard_of.size());
  if (count >= kGroupedListsMin) {
    ASSIGN_OR_RETURN(SublistPlan plan, PlanSublists(added_.data(), count, dim, metric, SublistCount(count, 0)));
    std::vector<float> ordered(added_.size());
    std::vector<int32_t> shards(shard_of.size()), lists(list_of.size());
    for (size_t i = 0; i < plan.order.size(); ++i) {
      const auto from = static_cast<size_t>(plan.order[i]);
      std::copy_n(added_.begin() + static_cast<std::ptrdiff_t>(from * static_cast<size_t>(dim)), dim,
                  ordered.begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(dim)));
      shards[i] = shard_of[from];
      lists[i] = list_of[from];
    }
    added_ = std::move(ordered);
    shard_of = std::move(shards);
    list_of = std::move(lists);
    SubLists g;
    g.ranges = std::move(plan.ranges);
    g.centroids = CentroidTable(plan.centroids.data.data(), plan.centroids.rows, dim, metric);
    g.centroid_codes.emplace(QuantizeRows(plan.centroids.data.data(), plan.centroids.rows, dim, g.centroids));
    grouping.emplace(std::move(g));
  }
  centroids = CentroidTable(added_.data(), count, dim, metric);
  if (count > 0) codes.emplace(QuantizeRows(added_.data(), count, dim, centroids));
  added_ = {};
  return Status::OK();
}

void RankSnapshotLists(const SnapshotListTable& table, std::span<const float* const> queries, int64_t want,
                       std::vector<std::vector<ScanHit>>* out) {
  if (!table.codes) {
    out->assign(queries.size(), {});
    return;
  }
  if (!table.grouping || kGroupRowsPerWant * want >= table.codes->rows()) {
    Sq8Rank(*table.codes, queries, want, out);
    return;
  }
  const SubLists& g = *table.grouping;
  std::vector<std::vector<ScanHit>> nearest;
  Sq8Rank(*g.centroid_codes, queries, static_cast<int64_t>(g.ranges.size()), &nearest);
  std::vector<std::vector<int32_t>> queries_of(g.ranges.size());
  for (size_t q = 0; q < queries.size(); ++q) {
    int64_t rows = 0;
    for (const ScanHit& hit : nearest[q]) {
      if (rows >= kGroupRowsPerWant * want) break;
      const RowRange& range = g.ranges[static_cast<size_t>(hit.row)];
      rows += range.end - range.begin;
      queries_of[static_cast<size_t>(hit.row)].push_back(static_cast<int32_t>(q));
    }
  }
  std::vector<RowRange> ranges;
  std::vector<std::vector<int32_t>> range_queries;
  for (size_t group = 0; group < g.ranges.size(); ++group) {
    if (queries_of[group].empty()) continue;
    ranges.push_back(g.ranges[group]);
    range_queries.push_back(std::move(queries_of[group]));
  }
  Sq8ScanOptions options;
  options.row_ranges = ranges;
  options.range_queries = range_queries;
  if (ranges.empty()) {
    out->assign(queries.size(), {});
    return;
  }
  Sq8Rank(*table.codes, queries, want, out, options);
}

}  // namespace shardvec
