// vec0's distances (vec0_distance.h) of many rows of a ScanTable to one query at once, bit for bit:
// SIMD lane i carries row i's serial float sum, dimension by dimension in vec0's order, with a
// separate multiply and add and the same casts, so each lane computes exactly what Vec0Distance
// computes on that row alone, while one SIMD register carries 8 rows (AVX2 and AVX-512) instead of
// one, and a pass interleaves up to 4 such groups. (vec0's one-row sum is one long chain of
// dependent float additions: its speed is the latency of an addition, which the lanes share.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/simd_isa.h"
#include "shard/scan_kernel.h"

namespace shardvec {

class Vec0Lanes {
 public:
  // `table` must outlive this scorer. `isa` picks the kernel (scalar when this CPU cannot run it;
  // scalar scores one row at a time as Vec0Distance does).
  explicit Vec0Lanes(const ScanTable& table, ScanIsa isa = DefaultScanIsa());

  // out[i] = Vec0Distance(table.metric, row rows[i] with its dimensions in vec0's order, query, dim)
  // for `query` in vec0's (the user's) dimension order; out.size() == rows.size().
  void Score(const float* query, std::span<const int64_t> rows, std::span<double> out);

  // The rows one SIMD register carries (1 for scalar).
  int64_t lanes() const { return lanes_; }

 private:
  const ScanTable& table_;
  ScanIsa isa_;
  int64_t lanes_;
  // column_of_[d]: the matrix column that holds dimension d (the identity without column_order).
  std::vector<int32_t> column_of_;
  // At least `floats` floats of scratch: a pass's rows transposed (one lane per row), or one row in
  // vec0's order.
  float* Scratch(size_t floats);
  std::unique_ptr<float[]> scratch_;
  size_t scratch_size_ = 0;
};

}  // namespace shardvec
