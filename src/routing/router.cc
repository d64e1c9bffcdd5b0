#include "routing/router.h"

#include <fmt/format.h>

#include "routing/cluster.h"
#include "routing/explicit_routing.h"
#include "routing/lsh.h"

namespace shardvec {
namespace {

Status CheckShardInRange(int64_t shard, int64_t num_dbs, std::string_view strategy, const Record& r) {
  if (shard < 0 || shard >= num_dbs) {
    return Status::Internal(fmt::format("{} sharding produced shard_id {} outside [0, {}) (record id={})",
                                        strategy, shard, num_dbs, RecordIdToString(r.id)));
  }
  return Status::OK();
}

class ClusterRouter : public Router {
 public:
  ClusterRouter(Matrix centroids, Metric metric) : centroids_(std::move(centroids)), metric_(metric) {}
  Result<int64_t> Assign(const Record& r) const override {
    const int64_t shard = ClusterAssign(r.vector.data(), centroids_, metric_);
    Status st = CheckShardInRange(shard, centroids_.rows, "CLUSTER", r);
    if (!st.ok()) return st;
    return shard;
  }
  Result<std::vector<int64_t>> Probe(const float* q, int64_t num_probes) const override {
    return ClusterProbe(q, centroids_, metric_, num_probes);
  }

 private:
  Matrix centroids_;
  Metric metric_;
};

class LshRouter : public Router {
 public:
  LshRouter(Matrix hyperplanes, int64_t num_dbs) : hyperplanes_(std::move(hyperplanes)), num_dbs_(num_dbs) {}
  Result<int64_t> Assign(const Record& r) const override {
    const int64_t shard = LshAssign(r.vector.data(), hyperplanes_, num_dbs_);
    Status st = CheckShardInRange(shard, num_dbs_, "LSH", r);
    if (!st.ok()) return st;
    return shard;
  }
  Result<std::vector<int64_t>> Probe(const float* q, int64_t num_probes) const override {
    return LshProbe(q, hyperplanes_, num_dbs_, num_probes);
  }

 private:
  Matrix hyperplanes_;
  int64_t num_dbs_;
};

class ExplicitRouter : public Router {
 public:
  explicit ExplicitRouter(int64_t num_dbs) : num_dbs_(num_dbs) {}
  Result<int64_t> Assign(const Record& r) const override {
    return ExplicitAssign(r.shard_id, num_dbs_, RecordIdToString(r.id));
  }
  Result<std::vector<int64_t>> Probe(const float*, int64_t) const override {
    return Status::InvalidArgument("EXPLICIT sharding requires shard_ids to be provided at query time");
  }

 private:
  int64_t num_dbs_;
};

}  // namespace

Result<std::unique_ptr<Router>> MakeRouter(const RoutingPlan& state) {
  switch (state.strategy) {
    case Strategy::kCluster:
      if (!state.centroids) return Status::InvalidArgument("CLUSTER sharding requires centroids");
      return std::unique_ptr<Router>(std::make_unique<ClusterRouter>(*state.centroids, state.metric));
    case Strategy::kLsh:
      if (!state.hyperplanes) return Status::InvalidArgument("LSH sharding requires hyperplanes");
      return std::unique_ptr<Router>(std::make_unique<LshRouter>(*state.hyperplanes, state.num_dbs));
    case Strategy::kExplicit:
      return std::unique_ptr<Router>(std::make_unique<ExplicitRouter>(state.num_dbs));
    case Strategy::kCel:
      break;
  }
  return Status::InvalidArgument(
      "strategy 'cel' is not available in this version of shardvec; use cluster, lsh or explicit");
}

}  // namespace shardvec
