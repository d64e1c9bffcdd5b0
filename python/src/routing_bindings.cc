// shardvec._engine's routing functions for shardvec.vector.sharding: the reader's router (probe
// order), LSH codes and hyperplanes, and k-means training, all from src/routing.
#include <fmt/format.h>

#include "common/vector_check.h"
#include "engine_common.h"
#include "routing/kmeans.h"
#include "routing/lsh.h"
#include "routing/router.h"

namespace shardvec::py {
namespace {

using FloatArray = nb::ndarray<nb::numpy, float, nb::ndim<2>>;

// A matrix the engine made, handed to NumPy without another copy.
FloatArray ToNumpy(Matrix m) {
  auto* data = new std::vector<float>(std::move(m.data));
  nb::capsule owner(data, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
  return FloatArray(data->data(), {static_cast<size_t>(m.rows), static_cast<size_t>(m.cols)}, owner);
}

// A plan's centroids or hyperplanes: at least one row of `dim` finite values.
void CheckPlanMatrices(const RoutingPlan& plan) {
  if (plan.centroids) {
    if (Status s = CheckMatrix(*plan.centroids, "centroids", plan.dim); !s.ok()) Raise(s);
  }
  if (plan.hyperplanes) {
    if (Status s = CheckMatrix(*plan.hyperplanes, "hyperplanes", plan.dim); !s.ok()) Raise(s);
  }
}

// The shards the reader's router lists for `query`, best first: Router::Probe, or for CEL the one
// shard `routing_context` selects.
std::vector<int64_t> ProbeShards(const RoutingPlan& plan, const FloatVector& query, int64_t num_probes,
                                 nb::object routing_context) {
  CheckPlanMatrices(plan);
  std::optional<RoutingContext> context;
  if (!routing_context.is_none()) context = RoutingContextFromPython(routing_context, "routing_context");
  Result<std::vector<int64_t>> shards = Status::Internal("not run");
  {
    nb::gil_scoped_release release;
    shards = [&]() -> Result<std::vector<int64_t>> {
      ASSIGN_OR_RETURN(std::unique_ptr<Router> router, MakeRouter(plan));
      if (router->RoutesByContext()) {
        ASSIGN_OR_RETURN(const int64_t shard, router->ProbeContext(context ? &*context : nullptr));
        return std::vector<int64_t>{shard};
      }
      if (static_cast<int64_t>(query.size()) != plan.dim) {
        return Status::InvalidArgument(fmt::format("query has {} values, expected dim={}", query.size(), plan.dim));
      }
      RETURN_IF_ERROR(CheckVectorValues(std::span<const float>(query.data(), query.size()), Metric::kL2, "query"));
      return router->Probe(query.data(), num_probes);
    }();
  }
  return Unwrap(std::move(shards));
}

// LshCode of one vector (hyperplanes.rows bits).
uint64_t LshHash(const FloatVector& vector, const FloatMatrix& hyperplanes) {
  const Matrix planes = CopyMatrix(hyperplanes);
  const auto dim = static_cast<int64_t>(vector.size());
  if (planes.cols != dim) {
    Raise(Status::InvalidArgument(fmt::format("hyperplanes has {} columns but the vector has {} values", planes.cols, dim)));
  }
  if (Status s = CheckMatrix(planes, "hyperplanes", dim); !s.ok()) Raise(s);
  if (Status s = CheckVectorValues(std::span<const float>(vector.data(), vector.size()), Metric::kL2, "vector");
      !s.ok()) {
    Raise(s);
  }
  if (planes.rows > kMaxLshBits) {
    Raise(Status::InvalidArgument(fmt::format("hyperplanes has {} rows; a code holds at most {} bits", planes.rows,
                                              kMaxLshBits)));
  }
  return LshCode(vector.data(), planes);
}

FloatArray Hyperplanes(int64_t num_hash_bits, int64_t dim, uint64_t seed) {
  if (num_hash_bits < 1 || num_hash_bits > kMaxLshBits) {
    Raise(Status::InvalidArgument(fmt::format("num_hash_bits must be in [1, {}] (got {})", kMaxLshBits, num_hash_bits)));
  }
  if (dim < 1) Raise(Status::InvalidArgument(fmt::format("dim must be >= 1 (got {})", dim)));
  return ToNumpy(GenerateHyperplanes(num_hash_bits, dim, seed));
}

// The writer's k-means (train_centroids) on `sample`, without the GIL.
FloatArray KMeans(const FloatMatrix& sample, int64_t k, int max_iter, uint64_t seed) {
  const Matrix rows = CopyMatrix(sample);
  KMeansOptions options;
  options.max_iter = max_iter;
  options.seed = seed;
  Result<Matrix> centroids = Status::Internal("not run");
  {
    nb::gil_scoped_release release;
    centroids = TrainKMeans(rows, k, options);
  }
  return ToNumpy(Unwrap(std::move(centroids)));
}

}  // namespace

void BindRouting(nb::module_& m) {
  m.def("probe_shards", &ProbeShards, nb::arg("plan"), nb::arg("query"), nb::arg("num_probes"),
        nb::arg("routing_context").none() = nb::none(),
        "The shards the reader's router probes for `query` under `plan`, best first (CEL: the one shard "
        "`routing_context` selects).");
  m.def("lsh_code", &LshHash, nb::arg("vector"), nb::arg("hyperplanes"),
        "The LSH code of `vector`: bit i set when hyperplane i . vector > 0.");
  m.def("lsh_hyperplanes", &Hyperplanes, nb::arg("num_hash_bits"), nb::arg("dim"), nb::arg("seed"),
        "The (num_hash_bits, dim) float32 hyperplanes the writer generates for `seed`.");
  m.def("train_kmeans", &KMeans, nb::arg("sample"), nb::arg("k"), nb::arg("max_iter"), nb::arg("seed"),
        "k centroids trained on `sample` by the writer's k-means (k-means++ then Lloyd), without the GIL.");
}

}  // namespace shardvec::py
