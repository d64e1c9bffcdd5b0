// K-means training for CLUSTER routing (docs/routing.md#k-means-training): k-means++ seeding, then Lloyd iterations on
// squared L2 whatever the snapshot metric. The centroids are persisted, so readers never retrain;
// what matters here is that a given sample and seed always give bit-identical centroids.
#pragma once

#include <cstdint>
#include <functional>

#include "common/simd_isa.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

struct KMeansOptions {
  int max_iter = 100;
  uint64_t seed = 42;
  // Convergence test, as numpy.allclose(old, new): every |old - new| <= atol + rtol * |new|.
  double rtol = 1e-5;
  double atol = 1e-6;
  // Early stop: training also ends when an assignment lowers the inertia (below) by no more than this
  // fraction of the previous assignment's; the centroids of that assignment are returned. 0 turns it off.
  double inertia_tol = 1e-4;
  // Warm start: when the sample has more than k x this many rows, seeding and Lloyd first run on that
  // many rows drawn from it (seeded, without replacement, kept in sample order), and Lloyd over the
  // whole sample then refines those centroids. 0 always trains on the whole sample from the start.
  int64_t warm_start_rows_per_centroid = 256;
  // Worker threads; 0 means one per hardware thread. The centroids do not depend on it.
  int num_threads = 0;
  // The distance kernels' instruction set. The centroids do not depend on it either.
  ScanIsa isa = DefaultScanIsa();
  // Called after each Lloyd assignment over the whole sample (not the warm start's) with the
  // iteration (1-based) and the inertia: the sum of the rows' squared L2 distances to their nearest
  // centroid. Does not change the centroids.
  std::function<void(int iteration, double inertia)> on_iteration;
};

// Trains k centroids (a k x sample.cols matrix) from `sample` (one vector per row).
// - Seeding: the first centroid is a uniformly random row; each next one is a row drawn with
//   probability proportional to its squared L2 distance to the nearest chosen centroid (uniformly
//   when every distance is 0).
// - Lloyd: each row joins its nearest centroid (ties to the lowest index); each centroid moves to
//   the mean of its rows, and a centroid with no rows keeps its place. On convergence the centroids
//   from before the last update are returned, else those after max_iter updates. Training also stops
//   early on a small inertia change (options.inertia_tol), and a large sample is first trained on a
//   subsample (options.warm_start_rows_per_centroid), each phase at most max_iter iterations.
// Randomness comes from std::mt19937_64(options.seed) with our own integer and double draws, so the
// result is the same on every platform and for every thread count.
// Errors (InvalidArgument): k <= 0, an empty sample, fewer rows than k, a dimension <= 0, a data
// size that does not match rows x cols, a non-finite value, max_iter < 0, inertia_tol < 0 (or NaN),
// warm_start_rows_per_centroid < 0.
Result<Matrix> TrainKMeans(const Matrix& sample, int64_t k, const KMeansOptions& options = {});

}  // namespace shardvec
