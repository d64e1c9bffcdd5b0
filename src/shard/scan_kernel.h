// The exact scan behind a shard search: vec0's distances (l2 = Euclidean; cosine = 1 - cos) over a
// row-major float matrix, with a bounded top-k. One SIMD implementation per instruction set
// (AVX-512, AVX2+FMA, scalar), chosen at run time; all produce vec0's distances within float
// rounding, since only the order of the additions differs.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "common/simd_isa.h"
#include "shardvec/types.h"

namespace shardvec {

// Rows are padded with zeros to a multiple of this many floats, so every kernel runs whole
// vectors (zeros add nothing to a sum of squares or to a dot product).
inline constexpr int64_t kScanLanes = 8;
inline int64_t PaddedDim(int64_t dim) { return (dim + kScanLanes - 1) / kScanLanes * kScanLanes; }

// A shard's vectors held for scanning: `rows` × `stride` floats, 64-byte aligned, zero padded.
class ScanMatrix {
 public:
  ScanMatrix() = default;
  ScanMatrix(int64_t rows, int64_t dim);
  float* row(int64_t i) { return data_.get() + i * stride_; }
  const float* row(int64_t i) const { return data_.get() + i * stride_; }
  int64_t rows() const { return rows_; }
  int64_t dim() const { return dim_; }
  int64_t stride() const { return stride_; }
  int64_t bytes() const { return rows_ * stride_ * static_cast<int64_t>(sizeof(float)); }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  int64_t rows_ = 0;
  int64_t dim_ = 0;
  int64_t stride_ = 0;
  std::unique_ptr<float[], Free> data_;
};

// A run of a ScanTable's rows, [begin, end).
struct RowRange {
  int64_t begin = 0;
  int64_t end = 0;
};

struct ScanHit {
  double score = 0;  // vec0's distance, lower is better
  int64_t rowid = 0;
  int64_t row = -1;  // ScanTopK: the hit's row in the ScanTable (-1 from vec0's KNN)
};

// The vectors plus what a search needs beside them: each row's rowid and, for cosine, its norm.
struct ScanTable {
  Metric metric = Metric::kL2;
  ScanMatrix vectors;
  std::vector<int64_t> rowids;
  std::vector<float> norms;  // cosine only: sqrt(sum x^2) per row
  // Cosine only: per row, the norms of its tails from floats 128, 256, 384, ... on (those short of
  // the stride), which bound what the rest of a row can add to a dot product.
  std::vector<float> tail_norms;
  // Empty: columns in the vectors' own order. Otherwise column j of the matrix holds dimension
  // column_order[j] (distances do not depend on the order; queries are reordered to match).
  std::vector<int32_t> column_order;
  // The first slot of each vec0 chunk, ascending (slots number vec0's valid rows in its scan order:
  // chunk by chunk, slot by slot). vec0 breaks distance ties by chunk, then by slot from the last;
  // empty: one chunk.
  std::vector<int64_t> chunk_starts;
  // Empty: row i is slot i. Otherwise the slot each row came from: a shard whose rows are not in
  // rowid order or whose sub-lists are not contiguous in it (one an update edited in place) is held
  // rearranged, each sub-list's rows together (shard/sublists.h ArrangeRows).
  std::vector<int64_t> slots;

  int64_t SlotOf(int64_t row) const { return slots.empty() ? row : slots[static_cast<size_t>(row)]; }
};

// How much of a scan read whole rows: a lone query gives up on a row once it cannot enter the top k.
struct ScanStats {
  int64_t rows = 0;          // rows × queries scored
  int64_t rows_stopped = 0;  // of those, given up before their end
  int64_t floats_skipped = 0;  // the floats of those rows never read
};

struct ScanOptions {
  ScanIsa isa = DefaultScanIsa();
  // Rows farther than this are not returned (so fewer than k may be): a search that already holds
  // k hits at this distance from other shards needs none farther, and skips them early.
  double max_distance = std::numeric_limits<double>::infinity();
  ScanStats* stats = nullptr;  // filled when given
  // The rows scanned: empty = every row of the table; else these ranges only (ascending, disjoint).
  std::span<const RowRange> row_ranges;
  // With row_ranges: per range, the queries (indices into `queries`, ascending) that scan it; empty =
  // every query scans every range. A batch reads each range once for all the queries that scan it.
  std::span<const std::vector<int32_t>> range_queries;
};

// The k nearest rows to each query (dim floats each), ascending by distance; ties in any order.
// Queries are scanned together block by block, so a block of rows is read from memory once for all
// of them; a lone query instead gives up on each row as soon as the row cannot enter (the same
// result, bit for bit). `out` gets one list per query.
void ScanTopK(const ScanTable& table, std::span<const float* const> queries, int64_t k,
              std::vector<std::vector<ScanHit>>* out, const ScanOptions& options = {});

// The kernel's distances (ScanTopK's scores, bit for bit) of `rows` (indices into the table) to
// `query`: out[i] for rows[i].
void ScoreRows(const ScanTable& table, const float* query, std::span<const int64_t> rows, std::span<double> out,
               ScanIsa isa = DefaultScanIsa());

// Reorders the matrix's columns by decreasing variance over its rows (sets column_order), so the
// first floats of a row carry most of its distance to a query and a lone query's scan rules far rows
// out at an early check (image pixels, for one, spread much more at the centre than at the border).
// Before ComputeNorms.
void OrderColumnsBySpread(ScanTable* table);

// Fills table.norms and table.tail_norms for a cosine table (with `isa`'s arithmetic).
void ComputeNorms(ScanTable* table, ScanIsa isa = DefaultScanIsa());

}  // namespace shardvec
