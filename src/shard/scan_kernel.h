// The exact scan behind a shard search: vec0's distances (l2 = Euclidean; cosine = 1 - cos) over a
// row-major float matrix, with a bounded top-k. One SIMD implementation per instruction set
// (AVX-512, AVX2+FMA, scalar), chosen at run time; all produce vec0's distances within float
// rounding, since only the order of the additions differs.
#pragma once

#include <cstdint>
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

struct ScanHit {
  double score = 0;  // vec0's distance, lower is better
  int64_t rowid = 0;
};

// The vectors plus what a search needs beside them: each row's rowid and, for cosine, its norm.
struct ScanTable {
  Metric metric = Metric::kL2;
  ScanMatrix vectors;
  std::vector<int64_t> rowids;
  std::vector<float> norms;  // cosine only: sqrt(sum x^2) per row
};

// The k nearest rows to each query (dim floats each), ascending by distance; ties in any order.
// Queries are scanned together block by block, so a block of rows is read from memory once for all
// of them. `out` gets one list per query.
void ScanTopK(const ScanTable& table, std::span<const float* const> queries, int64_t k,
              std::vector<std::vector<ScanHit>>* out, ScanIsa isa = DefaultScanIsa());

// Fills table.norms for a cosine table (with `isa`'s arithmetic).
void ComputeNorms(ScanTable* table, ScanIsa isa = DefaultScanIsa());

}  // namespace shardvec
