// CLUSTER routing (docs/routing.md#cluster): a vector belongs to its nearest centroid; a query probes the
// nearest few. Probe 0 always equals the assignment, so the writer's shard is always searched.
#pragma once

#include <cstdint>
#include <vector>

#include "common/simd_isa.h"
#include "shardvec/types.h"

namespace shardvec {

// Index of the centroid nearest to `v` (centroids.cols values) under RoutingDistance; ties go to
// the lowest index and NaN distances rank last. Returns -1 when there are no centroids. `isa` picks
// the kernels (the answer is the same on each; tests compare them).
int64_t ClusterAssign(const float* v, const Matrix& centroids, Metric m, ScanIsa isa = DefaultScanIsa());

// Centroid indices ordered by distance to `q` (stable, so ties keep index order), first
// `num_probes` of them. num_probes >= centroids.rows gives all; num_probes <= 0 gives none.
std::vector<int64_t> ClusterProbe(const float* q, const Matrix& centroids, Metric m,
                                  int64_t num_probes);

}  // namespace shardvec
