#include "routing/routing_plan.h"

#include <fmt/format.h>

#include "common/status_macros.h"
#include "common/vector_check.h"
#include "routing/kmeans.h"
#include "routing/lsh.h"
#include "routing/router.h"
#include "shardvec/distributed.h"

namespace shardvec {
namespace {

// A plan's centroids or hyperplanes: present, well formed, and `rows` of them (`rows_field` names it).
Status CheckPlanMatrix(const std::optional<Matrix>& m, std::string_view name, int64_t dim, int64_t rows,
                       std::string_view rows_field) {
  if (!m) return Status::InvalidArgument(fmt::format("routing plan has no {}", name));
  RETURN_IF_ERROR(CheckMatrix(*m, fmt::format("routing plan {}", name), dim));
  if (m->rows != rows) {
    return Status::InvalidArgument(fmt::format("routing plan has {} {} but {} {}", m->rows, name, rows_field, rows));
  }
  return Status::OK();
}

}  // namespace

Result<RoutingPlan> ResolveRoutingPlan(const WriteConfig& config, const Matrix* training_sample) {
  const ShardingConfig& s = config.sharding;
  RoutingPlan plan;
  plan.strategy = s.strategy;
  plan.metric = config.index.metric;
  plan.dim = config.index.dim;
  plan.num_probes = s.num_probes;
  if (training_sample && !(s.strategy == Strategy::kCluster && s.train_centroids)) {
    return Status::InvalidArgument(
        "a training sample applies to CLUSTER sharding with train_centroids only; pass none");
  }
  switch (s.strategy) {
    case Strategy::kCluster:
      if (s.train_centroids) {
        if (!training_sample) {
          return Status::InvalidArgument("CLUSTER sharding with train_centroids needs a training sample");
        }
        RETURN_IF_ERROR(CheckMatrix(*training_sample, "training sample", plan.dim));
        KMeansOptions kmeans;
        if (config.on_progress) {
          kmeans.on_iteration = [&config](int iteration, double inertia) {
            config.on_progress(WriteProgress{.phase = "train", .done = iteration, .total = 0, .inertia = inertia});
          };
        }
        ASSIGN_OR_RETURN(plan.centroids, TrainKMeans(*training_sample, *s.num_dbs, kmeans));
      } else {
        plan.centroids = *s.centroids;
      }
      plan.num_dbs = plan.centroids->rows;
      break;
    case Strategy::kLsh:
      plan.num_dbs = *s.num_dbs;
      plan.num_hash_bits = s.hyperplanes ? s.hyperplanes->rows : s.num_hash_bits.value_or(kDefaultLshBits);
      plan.hyperplanes = s.hyperplanes ? *s.hyperplanes : GenerateHyperplanes(plan.num_hash_bits, plan.dim);
      break;
    case Strategy::kExplicit:
      plan.num_dbs = *s.num_dbs;
      break;
    case Strategy::kCel:
      plan.num_dbs = s.routing_values ? static_cast<int64_t>(s.routing_values->size()) : *s.num_dbs;
      plan.cel_expr = *s.cel_expr;
      plan.cel_columns = s.cel_columns;
      plan.routing_values = s.routing_values;
      break;
  }
  return plan;
}

Result<RoutingPlan> PlanRouting(const WriteConfig& config, const Matrix* training_sample) {
  RETURN_IF_ERROR(Validate(config));
  return ResolveRoutingPlan(config, training_sample);
}

Status CheckRoutingPlan(const RoutingPlan& plan) { return MakeCheckedRouter(plan).status(); }

Result<std::unique_ptr<Router>> MakeCheckedRouter(const RoutingPlan& plan) {
  if (plan.dim <= 0) return Status::InvalidArgument(fmt::format("routing plan dim must be > 0 (got {})", plan.dim));
  if (plan.num_dbs <= 0) {
    return Status::InvalidArgument(fmt::format("routing plan num_dbs must be > 0 (got {})", plan.num_dbs));
  }
  if (plan.strategy == Strategy::kCluster) {
    RETURN_IF_ERROR(CheckPlanMatrix(plan.centroids, "centroids", plan.dim, plan.num_dbs, "num_dbs"));
  }
  if (plan.strategy == Strategy::kLsh) {
    RETURN_IF_ERROR(CheckPlanMatrix(plan.hyperplanes, "hyperplanes", plan.dim, plan.num_hash_bits, "num_hash_bits"));
  }
  if (plan.strategy == Strategy::kCel && plan.routing_values &&
      static_cast<int64_t>(plan.routing_values->size()) != plan.num_dbs) {
    return Status::InvalidArgument(fmt::format("routing plan has {} routing_values but num_dbs {}",
                                               plan.routing_values->size(), plan.num_dbs));
  }
  auto router = MakeRouter(plan, /*strict_tokens=*/true);
  if (!router.ok()) return router.status().WithContext("routing plan");
  return router;
}

}  // namespace shardvec
