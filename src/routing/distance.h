// Routing distances (docs/routing.md#distances): the NumPy formulas the reference routes with, not sqlite-vec's.
#pragma once

#include <cstdint>

#include "common/simd_isa.h"
#include "shardvec/types.h"

namespace shardvec {

// l2: squared Euclidean distance. cosine: 1 - a.b / (|a| |b| + 1e-10), so a zero vector is at
// distance 1 from everything. Accumulates in double, in 8 lanes (lane l takes elements i + l, the
// tail goes to lane 0, the lanes are added in order), so every instruction set gives the same
// bits: a row is routed to the same shard on every machine.
double RoutingDistance(Metric m, const float* a, const float* b, int64_t dim,
                       ScanIsa isa = DefaultScanIsa());

struct RoutingKernels;  // one instruction set's loops (distance.cc)

// Distances from one vector to many (centroids): its own norm is summed once.
class RoutingDistanceFrom {
 public:
  RoutingDistanceFrom(Metric m, const float* from, int64_t dim, ScanIsa isa = DefaultScanIsa());
  double To(const float* other) const;
  // out[i] = To(others[i]), the same bits, scored several at a time.
  void ToEach(const float* const* others, int64_t n, double* out) const;
  // A cheaper estimate in float, for deciding when the exact distances are not needed:
  // |approx[i] - To(others[i])| <= error[i] (infinite when no bound holds; a NaN or infinite
  // approx has none either). The estimates differ between instruction sets; the bound holds on each.
  void ApproxToEach(const float* const* others, int64_t n, double* approx, double* error) const;

 private:
  Metric metric_;
  const float* from_;
  int64_t dim_;
  const RoutingKernels* kernels_;
  double from_sum_squares_ = 0.0;  // cosine only
};

}  // namespace shardvec
