// Sub-list routing (docs/architecture.md#search): the router names candidate shards, then the
// nearest sub-lists across all of them are scanned, `sublist_probes` in all. By default both counts
// follow num_probes (DefaultSublistRouting), so num_probes stays the one recall knob.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "format/manifest.h"
#include "shard/scan_kernel.h"
#include "shard/sq8.h"
#include "shard/sublists.h"

namespace shardvec {

// What a manifest's custom.shardvec.sublists records: the sub-lists of all shards and how many
// shards have them (absent or unreadable: none, and shards are searched whole).
struct SnapshotSublists {
  int64_t lists = 0;
  int64_t shards = 0;
  double per_shard() const { return shards > 0 ? static_cast<double>(lists) / static_cast<double>(shards) : 0; }
};
SnapshotSublists ReadSnapshotSublists(const Manifest& manifest);

struct SublistRouting {
  int64_t candidate_shards = 0;  // shards whose sub-lists are ranked
  int64_t sublist_probes = 0;    // sub-lists scanned across them
};

// The default for `num_probes` on a snapshot whose routing reaches `max_probes` shards, with
// `lists_per_shard` sub-lists per shard on average: candidate_shards = min(max_probes,
// kCandidateShardsPerProbe x num_probes), sublist_probes = ceil(kSublistShare x num_probes x
// lists_per_shard). Chosen by measurement on Fashion-MNIST (16 and 64 shards) and the 1000-cluster
// cosine set (16 shards): the nearest lists across 2x the shards, a sixth of a shard's lists per probe,
// gave at least the recall of scanning num_probes whole shards (within 0.01) for num_probes 1..8,
// scanning a sixth of the rows. (Growing with sqrt(num_probes) instead fell 0.04 short on Fashion at
// 64 shards and 4 probes; 4x the shards gave about the same recall at twice the ranking cost.)
inline constexpr int64_t kCandidateShardsPerProbe = 2;
inline constexpr double kSublistShare = 1.0 / 6;
SublistRouting DefaultSublistRouting(int64_t num_probes, int64_t max_probes, double lists_per_shard);

// One candidate sub-list of a query: its centroid's distance, the candidate shard (slot) and the list.
struct ListCandidate {
  double score = 0;
  int32_t slot = 0;
  int32_t list = 0;
  int64_t passing = 0;  // a filtered query's passing rows in the list
};

// The `budget` nearest candidates (ties: lower slot, then lower list), as each slot's lists
// ascending (`slots` entries; a slot none was picked from gets an empty list).
std::vector<std::vector<int32_t>> PickSublists(std::vector<ListCandidate> candidates, int64_t budget, size_t slots);

// A filtered query's pick: the nearest candidates, in the order above, until at least `budget` were
// taken and they hold at least `need` passing rows (or none is left); lists without a passing row are
// taken but left out of the result, which has PickSublists' shape.
std::vector<std::vector<int32_t>> PickFilteredSublists(std::vector<ListCandidate> candidates, int64_t budget,
                                                       int64_t need, size_t slots);

// Every shard's sub-lists as one table, which ranks them all for a query at once: a filtered query
// whose passing rows are too sparse near it ranks the nearest lists of the whole snapshot (one pass
// over a quarter of the centroids' bytes instead of a ranking per shard).
struct SnapshotListTable {
  std::vector<int32_t> shard_of;  // per row: the shard it came from (Add's `shard`)
  std::vector<int32_t> list_of;   // per row: its list in that shard
  ScanTable centroids;            // in the snapshot's metric, once finished
  std::optional<Sq8Codes> codes;  // once finished, when there is a row
  int64_t rows = 0;               // the rows the shards' lists hold
  // From kGroupedListsMin rows on: the rows grouped by k-means over their centroids (as a shard's
  // rows into sub-lists, about sqrt(rows) groups) and stored group by group, so that a query ranks
  // the groups' centroids and then only the rows of its nearest groups (RankSnapshotLists).
  std::optional<SubLists> grouping;  // the groups' ranges, centroids and codes

  // Appends shard `shard`'s lists (their centroids are `dim` wide).
  void Add(int32_t shard, const SubLists& lists, int64_t dim);
  // Makes the tables that rank the rows added, in `metric`.
  Status Finish(int64_t dim, Metric metric);

 private:
  std::vector<float> added_;
};
inline constexpr int64_t kGroupedListsMin = 1024;
// A query of a grouped table ranks the rows of its nearest groups that hold this many times the
// rows it wants.
// Measured on the 1M x 384 benchmark set (8,000 lists, 89 groups, 256 wanted): 4 lost recall@10
// at a 1 % filter (0.947), 8 kept 0.969 at 0.245 ms a query, 16 0.988 at 0.287 ms (ranking all
// 8,000: 0.999 at 0.335 ms).
inline constexpr int64_t kGroupRowsPerWant = 8;

// The `want` nearest rows of `table` to each query, ascending by their codes' distance (ties: lower
// row); with groups, among the rows of each query's nearest groups (kGroupRowsPerWant x want rows).
void RankSnapshotLists(const SnapshotListTable& table, std::span<const float* const> queries, int64_t want,
                       std::vector<std::vector<ScanHit>>* out);

}  // namespace shardvec
