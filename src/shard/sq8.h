// The int8 pre-scan of a shard: each row scalar-quantized to one byte per dimension (per-dimension
// ranges trained on the shard's own rows), a SIMD scan of those codes that keeps the best
// `k × oversample` candidate rows per query, and a rescore of the candidates with the float32 rows
// in vec0's arithmetic (vec0_top_k.h), so every returned score is the one `SELECT … MATCH` gives.
//
// Approximation: row x ≈ min + scale ∘ c (c in 0..255). For a query q, q·x ≈ q·min + Σ (q_j scale_j) c_j;
// the weights q_j scale_j are quantized to int8 per query, so the sum is an integer dot product of
// unsigned codes with signed weights (AVX-512 VNNI, AVX2 or scalar: the same integers on every
// instruction set). The selection key is then
//   l2:     |x|² − 2 q·x          (|q|² is the same for every row)
//   cosine: −(q·x) / |x|
// with |x| exact (from the float rows); only q·x is approximated.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "common/simd_isa.h"
#include "shard/scan_kernel.h"

namespace shardvec {

// Per-dimension ranges: code c of dimension j stands for mins[j] + scales[j] · c.
struct Sq8Params {
  std::vector<float> mins;
  std::vector<float> scales;  // ≥ 0; 0 for a dimension that is constant over the rows
};

// Trains ranges on `n` rows of `dim` floats (row-major): each dimension's min and (max − min) / 255.
Sq8Params TrainSq8(const float* rows, int64_t n, int64_t dim);
// One row's codes (dim bytes); a value outside its dimension's range takes the nearest end's code.
void EncodeSq8(const Sq8Params& params, const float* row, uint8_t* codes);

// How far past its dimension's trained range a value may lie, as a share of the range's width, and
// still count as within it (Sq8WithinRanges).
inline constexpr double kSq8RangeSlack = 0.125;
// Whether every value of `row` lies within its dimension's range widened by kSq8RangeSlack of its
// width on each side (a dimension constant over the trained rows: equal to that constant). Rows
// outside are coded with clipped values: an update that adds many such rows to a shard rebuilds it.
bool Sq8WithinRanges(const Sq8Params& params, const float* row);

// Codes are padded with zeros to a multiple of this many bytes per row (a zero code meets a zero
// weight in the padding, adding nothing).
inline constexpr int64_t kSq8Lanes = 64;

// A shard's codes held for scanning, row i being the ScanTable's row i.
class Sq8Codes {
 public:
  // `codes`: rows × dim bytes, row-major. The row terms come from the table's float rows.
  Sq8Codes(Sq8Params params, std::span<const uint8_t> codes, const ScanTable& table);
  int64_t rows() const { return rows_; }
  int64_t dim() const { return dim_; }
  int64_t stride() const { return stride_; }
  const uint8_t* row(int64_t i) const { return data_.get() + i * stride_; }
  const Sq8Params& params() const { return params_; }
  float row_term(int64_t i) const { return row_terms_[static_cast<size_t>(i)]; }
  Metric metric() const { return metric_; }
  int64_t bytes() const { return rows_ * stride_ + rows_ * static_cast<int64_t>(sizeof(float)); }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  Metric metric_;
  int64_t rows_ = 0;
  int64_t dim_ = 0;
  int64_t stride_ = 0;
  Sq8Params params_;
  std::unique_ptr<uint8_t[], Free> data_;
  std::vector<float> row_terms_;  // l2: |x|²; cosine: 1 / |x|
};

// Candidates kept per hit wanted, unless a reader asks otherwise: chosen by measurement (README,
// "Quantized pre-scan"): recall@10 of the rescored answer against the float scan was 1.0 from 2 on
// (Fashion-MNIST l2 and a clustered 384-d cosine set), so 4 leaves a margin.
inline constexpr int64_t kDefaultRescoreOversample = 4;

struct Sq8ScanOptions {
  ScanIsa isa = DefaultScanIsa();
  int64_t oversample = kDefaultRescoreOversample;  // ≥ 1
  double max_distance = std::numeric_limits<double>::infinity();
  // The rows to search; empty = all of them.
  std::span<const RowRange> row_ranges = {};
  // With row_ranges: per range, the queries (indices into `queries`, ascending) that search it;
  // empty = every query searches every range (as ScanOptions::range_queries).
  std::span<const std::vector<int32_t>> range_queries = {};
};

// The k nearest rows to each query among the best k × oversample by code, rescored with the float
// rows in vec0's arithmetic and order (as Vec0TopK). When k × oversample covers every row searched,
// the answer is exactly Vec0TopK's. `out` gets one list per query.
void Sq8TopK(const ScanTable& table, const Sq8Codes& codes, std::span<const float* const> queries, int64_t k,
             std::vector<std::vector<ScanHit>>* out, const Sq8ScanOptions& options = {});

// The pre-scan alone: per query, the rows (ascending) of the best `want` keys by code.
void Sq8Candidates(const Sq8Codes& codes, std::span<const float* const> queries, int64_t want,
                   std::vector<std::vector<int64_t>>* out, const Sq8ScanOptions& options = {});

// Codes for `n` rows of `dim` floats (row-major, in dimension order), trained on those rows; `table`
// holds the same rows (it gives the row terms).
Sq8Codes QuantizeRows(const float* rows, int64_t n, int64_t dim, const ScanTable& table);

// The pre-scan as a ranking: per query, the `want` rows of the best keys by code, best first (ties:
// lower row), each with its key as the score and the row as rowid. A query's keys order rows as
// their distances to it do (up to the codes' error) and compare across Sq8Codes of the same
// metric: l2 |x|² − 2 q·x, cosine −q·x / |x| (each leaves out a term fixed by the query alone). For
// ranking what a search then scans (sub-list centroids), never for answers.
void Sq8Rank(const Sq8Codes& codes, std::span<const float* const> queries, int64_t want,
             std::vector<std::vector<ScanHit>>* out, const Sq8ScanOptions& options = {});

}  // namespace shardvec
