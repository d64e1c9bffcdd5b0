#include "routing/cluster.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "routing/distance.h"

namespace shardvec {
namespace {

// A strict weak order that puts NaN after every number. Assign and probe share it so that probe 0
// and the assignment agree even for a query that produced NaN distances.
bool CloserThan(double a, double b) {
  if (std::isnan(a)) return false;
  return std::isnan(b) || a < b;
}

std::vector<double> DistancesToCentroids(const float* v, const Matrix& centroids, Metric m) {
  const RoutingDistanceFrom from_v(m, v, centroids.cols);
  std::vector<double> distances(static_cast<size_t>(centroids.rows));
  for (int64_t i = 0; i < centroids.rows; ++i) distances[i] = from_v.To(centroids.row(i));
  return distances;
}

}  // namespace

int64_t ClusterAssign(const float* v, const Matrix& centroids, Metric m) {
  if (centroids.rows <= 0) return -1;
  const RoutingDistanceFrom from_v(m, v, centroids.cols);
  int64_t best = 0;
  double best_distance = from_v.To(centroids.row(0));
  for (int64_t i = 1; i < centroids.rows; ++i) {
    const double distance = from_v.To(centroids.row(i));
    // Strictly closer only: an equal distance keeps the lower index.
    if (CloserThan(distance, best_distance)) {
      best = i;
      best_distance = distance;
    }
  }
  return best;
}

std::vector<int64_t> ClusterProbe(const float* q, const Matrix& centroids, Metric m,
                                  int64_t num_probes) {
  if (num_probes <= 0 || centroids.rows <= 0) return {};
  const std::vector<double> distances = DistancesToCentroids(q, centroids, m);
  std::vector<int64_t> order(distances.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return CloserThan(distances[a], distances[b]);
  });
  order.resize(static_cast<size_t>(std::min<int64_t>(num_probes, centroids.rows)));
  return order;
}

}  // namespace shardvec
