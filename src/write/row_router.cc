// RowRouter: a distributed worker's router, checked and built once per plan, and RouteRows.
#include <fmt/format.h>

#include "common/status_macros.h"
#include "routing/router.h"
#include "shardvec/distributed.h"
#include "write/record_check.h"
#include "routing/routing_plan.h"

namespace shardvec {
namespace {

class RowRouterImpl final : public RowRouter {
 public:
  RowRouterImpl(RoutingPlan plan, std::unique_ptr<Router> router) : plan_(std::move(plan)), router_(std::move(router)) {}

  const RoutingPlan& plan() const override { return plan_; }

  Result<std::vector<int64_t>> Route(const RecordBatch& rows, int64_t row_offset) const override {
    RETURN_IF_ERROR(rows.Check());
    if (rows.dim != plan_.dim && rows.rows > 0) {
      return Status::InvalidArgument(
          fmt::format("record batch: vectors have {} columns, expected the plan's dim {}", rows.dim, plan_.dim));
    }
    const std::span<const std::optional<RoutingContext>> contexts = rows.routing_contexts;
    return RouteEach(rows.vectors, rows.rows, rows.shard_ids.empty() ? nullptr : rows.shard_ids.data(), row_offset,
                     [&](int64_t i) -> const RoutingContext* {
                       if (contexts.empty() || !contexts[static_cast<size_t>(i)]) return nullptr;
                       return &*contexts[static_cast<size_t>(i)];
                     });
  }

  // The shard of each of `rows` vectors; `context_at(i)` is row i's routing context, null for none.
  template <typename ContextAt>
  Result<std::vector<int64_t>> RouteEach(const float* vectors, int64_t rows, const int64_t* shard_ids,
                                         int64_t row_offset, ContextAt context_at) const {
    std::vector<int64_t> shards(static_cast<size_t>(rows));
    Record record;  // the row's id and shard_id; its vector is read in place
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t row = row_offset + i;
      const std::span<const float> vector(vectors + i * plan_.dim, static_cast<size_t>(plan_.dim));
      record.id = row;
      record.shard_id.reset();
      if (shard_ids && shard_ids[i] != kNoShardId) record.shard_id = shard_ids[i];
      RETURN_IF_ERROR(CheckRecordVector(record, vector, plan_.dim, plan_.metric, row));
      if (router_->RoutesByContext()) {
        // The context is read in place rather than copied into the record.
        const RoutingContext* context = context_at(i);
        if (!context) return Status::InvalidArgument(fmt::format("CEL sharding requires routing_context (row {})", row));
        Result<int64_t> shard = router_->ProbeContext(context);
        if (!shard.ok()) return shard.status().WithContext(fmt::format("row {}", row));
        shards[static_cast<size_t>(i)] = *shard;
        continue;
      }
      ASSIGN_OR_RETURN(shards[static_cast<size_t>(i)], AssignRecord(*router_, record, vector, row));
    }
    return shards;
  }

 private:
  const RoutingPlan plan_;
  const std::unique_ptr<Router> router_;
};

Result<std::unique_ptr<RowRouterImpl>> MakeRowRouter(const RoutingPlan& plan) {
  ASSIGN_OR_RETURN(std::unique_ptr<Router> router, MakeCheckedRouter(plan));
  return std::make_unique<RowRouterImpl>(plan, std::move(router));
}

}  // namespace

Result<std::unique_ptr<RowRouter>> RowRouter::Create(const RoutingPlan& plan) {
  ASSIGN_OR_RETURN(std::unique_ptr<RowRouterImpl> router, MakeRowRouter(plan));
  return std::unique_ptr<RowRouter>(std::move(router));
}

Result<std::vector<int64_t>> RouteRows(const RoutingPlan& plan, const float* vectors, int64_t rows,
                                       const int64_t* shard_ids, int64_t row_offset,
                                       const RoutingContext* contexts) {
  ASSIGN_OR_RETURN(std::unique_ptr<RowRouterImpl> router, MakeRowRouter(plan));
  if (rows < 0 || (rows > 0 && !vectors)) {
    return Status::InvalidArgument(fmt::format("RouteRows needs rows >= 0 and their vectors (got {} rows)", rows));
  }
  return router->RouteEach(vectors, rows, shard_ids, row_offset,
                           [&](int64_t i) { return contexts ? contexts + i : nullptr; });
}

}  // namespace shardvec
