#include "shard/vec0_top_k.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "shard/vec0_distance.h"
#include "shard/vec0_lanes.h"

namespace shardvec {
namespace {

// A query's candidates rescored with vec0's arithmetic, in vec0's order.
class Rescorer {
 public:
  explicit Rescorer(const ScanTable& table, ScanIsa isa = DefaultScanIsa()) : table_(table), lanes_(table, isa) {}

  // vec0's distances of `rows` to `query`, many rows per pass (valid until the next call).
  std::span<const double> Score(std::span<const int64_t> rows, const float* query) {
    scores_.resize(rows.size());
    lanes_.Score(query, rows, scores_);
    return scores_;
  }

  // vec0's order: distance, then chunk, then the later slot first.
  bool Before(const ScanHit& a, const ScanHit& b) const {
    if (a.score != b.score) return a.score < b.score;
    const int64_t slot_a = table_.SlotOf(a.row), slot_b = table_.SlotOf(b.row);
    const size_t chunk_a = Chunk(slot_a), chunk_b = Chunk(slot_b);
    if (chunk_a != chunk_b) return chunk_a < chunk_b;
    return slot_a > slot_b;
  }

 private:
  size_t Chunk(int64_t slot) const {
    const auto& starts = table_.chunk_starts;
    return static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), slot) - starts.begin());
  }

  const ScanTable& table_;
  Vec0Lanes lanes_;
  std::vector<double> scores_;
};

void ScanOne(const ScanTable& table, const float* query, int64_t want, double max_fast, ScanIsa isa,
             std::span<const RowRange> ranges, std::vector<ScanHit>* hits) {
  std::vector<std::vector<ScanHit>> out;
  ScanTopK(table, std::span<const float* const>(&query, 1), want, &out,
           {.isa = isa, .max_distance = max_fast, .row_ranges = ranges});
  *hits = std::move(out.front());
}

// The ranges query `q` scans (options.row_ranges filtered by range_queries; the whole table when
// none are given) and how many rows they hold.
int64_t QueryRanges(const ScanTable& table, const ScanOptions& options, int32_t q, std::vector<RowRange>* ranges) {
  ranges->clear();
  if (options.row_ranges.empty()) {
    ranges->push_back(RowRange{0, table.vectors.rows()});
  } else {
    for (size_t r = 0; r < options.row_ranges.size(); ++r) {
      if (options.range_queries.empty() || std::binary_search(options.range_queries[r].begin(),
                                                              options.range_queries[r].end(), q)) {
        ranges->push_back(options.row_ranges[r]);
      }
    }
  }
  int64_t rows = 0;
  for (const RowRange& range : *ranges) rows += range.end - range.begin;
  return rows;
}

enum class Outcome {
  kDone,       // `hits` is vec0's answer
  kMore,       // a row the kernel left out might still belong: ask for more candidates
  kUnbounded,  // a distance is not finite, so the slack bounds nothing: rescore every row
};

// Rescores `candidates` (the kernel's `want` nearest within max_fast) into vec0's top k.
Outcome Rescore(Rescorer& rescorer, const ScoreSlack& slack, const float* query, int64_t k, int64_t want,
                int64_t rows, double max_distance, double max_fast, std::vector<ScanHit> candidates,
                std::vector<ScanHit>* hits) {
  // Fewer than asked for: every row within max_fast is here. Without a bound the kernel only leaves
  // out rows whose distance is not a number below infinity (a sum that overflows float).
  const bool short_list = static_cast<int64_t>(candidates.size()) < want;
  if (short_list && std::isinf(max_fast)) return Outcome::kUnbounded;
  const bool all_rows = short_list || want >= rows;
  const double last_fast = candidates.empty() ? 0 : candidates.back().score;
  hits->clear();
  std::vector<int64_t> candidate_rows;
  candidate_rows.reserve(candidates.size());
  for (const ScanHit& c : candidates) candidate_rows.push_back(c.row);
  const std::span<const double> scores = rescorer.Score(candidate_rows, query);
  for (size_t i = 0; i < candidates.size(); ++i) {
    const ScanHit& c = candidates[i];
    if (!std::isfinite(scores[i]) || !std::isfinite(c.score)) return Outcome::kUnbounded;
    if (scores[i] <= max_distance) hits->push_back(ScanHit{scores[i], c.rowid, c.row});
  }
  std::sort(hits->begin(), hits->end(), [&](const ScanHit& a, const ScanHit& b) { return rescorer.Before(a, b); });
  if (static_cast<int64_t>(hits->size()) > k) hits->resize(static_cast<size_t>(k));
  if (all_rows) return Outcome::kDone;
  const double kth = static_cast<int64_t>(hits->size()) == k ? hits->back().score : max_distance;
  return slack.LowestExact(last_fast) > kth ? Outcome::kDone : Outcome::kMore;
}

// The k nearest of `rows`, in vec0's order.
void RescoreRows(const ScanTable& table, Rescorer& rescorer, const float* query, std::span<const int64_t> rows,
                 int64_t k, double max_distance, std::vector<ScanHit>* hits) {
  hits->clear();
  const std::span<const double> scores = rescorer.Score(rows, query);
  for (size_t i = 0; i < rows.size(); ++i) {
    // NaN (never from a table the loader accepts) is left out rather than ordered.
    if (scores[i] <= max_distance) hits->push_back(ScanHit{scores[i], table.rowids[static_cast<size_t>(rows[i])], rows[i]});
  }
  auto before = [&](const ScanHit& a, const ScanHit& b) { return rescorer.Before(a, b); };
  const size_t keep = std::min(hits->size(), static_cast<size_t>(std::max<int64_t>(k, 0)));
  std::partial_sort(hits->begin(), hits->begin() + static_cast<std::ptrdiff_t>(keep), hits->end(), before);
  hits->resize(keep);
}

// Every row of `ranges` rescored: the answer when the kernel's distances cannot be bounded (overflow).
void RescoreAll(const ScanTable& table, Rescorer& rescorer, const float* query, int64_t k, double max_distance,
                std::span<const RowRange> ranges, std::vector<ScanHit>* hits) {
  std::vector<int64_t> rows;
  for (const RowRange& range : ranges) {
    for (int64_t row = range.begin; row < range.end; ++row) rows.push_back(row);
  }
  RescoreRows(table, rescorer, query, rows, k, max_distance, hits);
}

}  // namespace

void Vec0TopKOfRows(const ScanTable& table, std::span<const float* const> queries, std::span<const int64_t> rows,
                    int64_t k, double max_distance, std::vector<std::vector<ScanHit>>* out) {
  out->assign(queries.size(), {});
  Rescorer rescorer(table);
  for (size_t q = 0; q < queries.size(); ++q) RescoreRows(table, rescorer, queries[q], rows, k, max_distance, &(*out)[q]);
}

int64_t Vec0CandidateCount(int64_t k, int64_t rows) {
  // A few rows past the k-th: near-ties at the boundary are then rescored rather than rescanned.
  return std::min(rows, k + std::max<int64_t>(8, k / 4));
}

void Vec0TopK(const ScanTable& table, std::span<const float* const> queries, int64_t k,
              std::vector<std::vector<ScanHit>>* out, const ScanOptions& options) {
  const ScoreSlack slack = KernelScoreSlack(table.metric, table.vectors.stride());
  const double max_fast = std::isinf(options.max_distance) ? options.max_distance : slack.HighestFast(options.max_distance);
  const int64_t want = Vec0CandidateCount(k, table.vectors.rows());
  std::vector<std::vector<ScanHit>> candidates;
  ScanTopK(table, queries, want, &candidates,
           {.isa = options.isa, .max_distance = max_fast, .stats = options.stats, .row_ranges = options.row_ranges,
            .range_queries = options.range_queries});
  out->assign(queries.size(), {});
  Rescorer rescorer(table, options.isa);
  std::vector<RowRange> ranges;
  for (size_t q = 0; q < queries.size(); ++q) {
    std::vector<ScanHit>& hits = (*out)[q];
    if (k <= 0) continue;
    // The rows this query scans: a query with fewer than `want` gets them all.
    const int64_t rows = QueryRanges(table, options, static_cast<int32_t>(q), &ranges);
    int64_t asked = std::min(want, rows);
    double bound = max_fast;
    std::vector<ScanHit> found = std::move(candidates[q]);
    // Each round at least doubles `asked` up to `rows`, where Rescore is done: a bounded loop.
    for (;;) {
      const Outcome outcome = Rescore(rescorer, slack, queries[q], k, asked, rows, options.max_distance, bound,
                                      std::move(found), &hits);
      if (outcome == Outcome::kDone) break;
      if (outcome == Outcome::kUnbounded) {
        RescoreAll(table, rescorer, queries[q], k, options.max_distance, ranges, &hits);
        break;
      }
      // Only rows whose kernel distance is within the slack of the k-th rescored one can still
      // enter (the k-th can only get lower), so the next scan leaves out every row beyond that: it
      // usually comes back short of `asked`, and then holds every row that can enter.
      const double kth = static_cast<int64_t>(hits.size()) == k ? hits.back().score : options.max_distance;
      bound = std::min(bound, slack.HighestFast(kth));
      asked = std::min(rows, asked * 2);
      ScanOne(table, queries[q], asked, bound, options.isa, ranges, &found);
    }
  }
}

void Vec0RescoreFast(const ScanTable& table, const float* query, std::vector<ScanHit> fast, int64_t k,
                     double max_distance, std::vector<ScanHit>* hits) {
  hits->clear();
  if (k <= 0 || fast.empty()) return;
  std::sort(fast.begin(), fast.end(), [](const ScanHit& a, const ScanHit& b) { return a.score < b.score; });
  Rescorer rescorer(table);
  const ScoreSlack slack = KernelScoreSlack(table.metric, table.vectors.stride());
  const auto rows = static_cast<int64_t>(fast.size());
  // Each round doubles `want` up to every row, where Rescore is done: a bounded loop.
  for (int64_t want = Vec0CandidateCount(k, rows);; want = std::min(rows, want * 2)) {
    std::vector<ScanHit> head(fast.begin(), fast.begin() + want);
    const Outcome outcome = Rescore(rescorer, slack, query, k, want, rows, max_distance,
                                    std::numeric_limits<double>::infinity(), std::move(head), hits);
    if (outcome == Outcome::kDone) return;
    if (outcome == Outcome::kUnbounded) break;
  }
  std::vector<int64_t> all;
  for (const ScanHit& f : fast) all.push_back(f.row);
  RescoreRows(table, rescorer, query, all, k, max_distance, hits);
}

}  // namespace shardvec
