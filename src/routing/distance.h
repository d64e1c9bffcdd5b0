// Routing distances (spec §1.9): the NumPy formulas the reference routes with, not sqlite-vec's.
#pragma once

#include <cstdint>

#include "shardvec/types.h"

namespace shardvec {

// l2: squared Euclidean distance. cosine: 1 - a.b / (|a| |b| + 1e-10), so a zero vector is at
// distance 1 from everything. Accumulates in double.
double RoutingDistance(Metric m, const float* a, const float* b, int64_t dim);

}  // namespace shardvec
