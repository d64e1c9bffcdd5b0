#include "routing/router.h"

#include <fmt/format.h>

#include "common/status_macros.h"
#include "routing/cel_routing.h"
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

// A record's routing field that its strategy does not read: refused, never silently dropped.
Status RefuseUnreadFields(const Record& r, Strategy strategy) {
  if (r.shard_id && strategy != Strategy::kExplicit) {
    return Status::InvalidArgument(fmt::format("record id={}: shard_id {} applies to EXPLICIT sharding only (strategy is {})",
                                               RecordIdToString(r.id), *r.shard_id, StrategyName(strategy)));
  }
  if (r.routing_context && strategy != Strategy::kCel) {
    return Status::InvalidArgument(fmt::format("record id={}: routing_context applies to CEL sharding only (strategy is {})",
                                               RecordIdToString(r.id), StrategyName(strategy)));
  }
  return Status::OK();
}

class ClusterRouter : public Router {
 public:
  ClusterRouter(Matrix centroids, Metric metric) : centroids_(std::move(centroids)), metric_(metric) {}
  Result<int64_t> Assign(const Record& r, std::span<const float> vector) const override {
    RETURN_IF_ERROR(RefuseUnreadFields(r, Strategy::kCluster));
    const int64_t shard = ClusterAssign(vector.data(), centroids_, metric_);
    Status st = CheckShardInRange(shard, centroids_.rows, "CLUSTER", r);
    if (!st.ok()) return st;
    return shard;
  }
  Result<std::vector<int64_t>> Probe(const float* q, int64_t num_probes) const override {
    return ClusterProbe(q, centroids_, metric_, num_probes);
  }
  int64_t MaxProbes() const override { return centroids_.rows; }

 private:
  Matrix centroids_;
  Metric metric_;
};

class LshRouter : public Router {
 public:
  LshRouter(Matrix hyperplanes, int64_t num_dbs) : hyperplanes_(std::move(hyperplanes)), num_dbs_(num_dbs) {}
  Result<int64_t> Assign(const Record& r, std::span<const float> vector) const override {
    RETURN_IF_ERROR(RefuseUnreadFields(r, Strategy::kLsh));
    const int64_t shard = LshAssign(vector.data(), hyperplanes_, num_dbs_);
    Status st = CheckShardInRange(shard, num_dbs_, "LSH", r);
    if (!st.ok()) return st;
    return shard;
  }
  Result<std::vector<int64_t>> Probe(const float* q, int64_t num_probes) const override {
    return LshProbe(q, hyperplanes_, num_dbs_, num_probes);
  }
  int64_t MaxProbes() const override { return LshMaxProbes(hyperplanes_.rows, num_dbs_); }

 private:
  Matrix hyperplanes_;
  int64_t num_dbs_;
};

class ExplicitRouter : public Router {
 public:
  explicit ExplicitRouter(int64_t num_dbs) : num_dbs_(num_dbs) {}
  Result<int64_t> Assign(const Record& r, std::span<const float>) const override {
    RETURN_IF_ERROR(RefuseUnreadFields(r, Strategy::kExplicit));
    return ExplicitAssign(r.shard_id, num_dbs_, RecordIdToString(r.id));
  }
  Result<std::vector<int64_t>> Probe(const float*, int64_t) const override {
    return Status::InvalidArgument("EXPLICIT sharding requires shard_ids to be provided at query time");
  }
  int64_t MaxProbes() const override { return 1; }

 private:
  int64_t num_dbs_;
};

class CelRouter : public Router {
 public:
  explicit CelRouter(std::unique_ptr<CelRouting> routing) : routing_(std::move(routing)) {}
  Result<int64_t> Assign(const Record& r, std::span<const float>) const override {
    RETURN_IF_ERROR(RefuseUnreadFields(r, Strategy::kCel));
    if (!r.routing_context) {
      return Status::InvalidArgument(
          fmt::format("CEL sharding requires routing_context (record id={})", RecordIdToString(r.id)));
    }
    Result<int64_t> shard = routing_->Shard(&*r.routing_context);
    if (!shard.ok()) return shard.status().WithContext(fmt::format("record id={}", RecordIdToString(r.id)));
    return shard;
  }
  Result<std::vector<int64_t>> Probe(const float*, int64_t) const override {
    return Status::InvalidArgument("CEL sharding requires routing_context to be provided at query time");
  }
  int64_t MaxProbes() const override { return 1; }
  bool RoutesByContext() const override { return true; }
  Result<int64_t> ProbeContext(const RoutingContext* context) const override {
    if (!context) {
      return Status::InvalidArgument("CEL sharding requires routing_context to be provided at query time");
    }
    return routing_->Shard(context);
  }

 private:
  std::unique_ptr<CelRouting> routing_;
};

}  // namespace

Result<std::unique_ptr<Router>> MakeRouter(const RoutingPlan& state, bool strict_tokens) {
  switch (state.strategy) {
    case Strategy::kCluster:
      if (!state.centroids) return Status::InvalidArgument("CLUSTER sharding requires centroids");
      return std::unique_ptr<Router>(std::make_unique<ClusterRouter>(*state.centroids, state.metric));
    case Strategy::kLsh:
      if (!state.hyperplanes) return Status::InvalidArgument("LSH sharding requires hyperplanes");
      return std::unique_ptr<Router>(std::make_unique<LshRouter>(*state.hyperplanes, state.num_dbs));
    case Strategy::kExplicit:
      return std::unique_ptr<Router>(std::make_unique<ExplicitRouter>(state.num_dbs));
    case Strategy::kCel: {
      auto routing = CelRouting::Make(state.cel_expr, state.cel_columns, state.routing_values, state.num_dbs,
                                      strict_tokens);
      if (!routing.ok()) return routing.status();
      return std::unique_ptr<Router>(std::make_unique<CelRouter>(std::move(routing).value()));
    }
  }
  return Status::Internal("unknown sharding strategy");
}

}  // namespace shardvec
