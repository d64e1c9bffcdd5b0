// shardvec._engine's distributed-write functions (include/shardvec/distributed.h): plans, tasks and
// shard infos are the typed, picklable classes of config_bindings.cc.
#include <fmt/format.h>

#include <memory>

#include "engine_common.h"

namespace shardvec::py {
namespace {

using Int64Array = nb::ndarray<nb::numpy, int64_t, nb::ndim<1>>;

// Validates and trains (CLUSTER) without the GIL: the sample is copied into the engine's matrix first.
RoutingPlan PlanRoutingFor(const WriteConfig& config, std::optional<FloatMatrix> sample) {
  std::optional<Matrix> rows;
  if (sample) rows = CopyMatrix(*sample);
  Result<RoutingPlan> plan = Status::Internal("not run");
  {
    nb::gil_scoped_release release;
    plan = PlanRouting(config, rows ? &*rows : nullptr);
  }
  return Unwrap(std::move(plan));
}

// A worker's router: the plan is checked and its router built once, then reused for every batch.
class PreparedRouter {
 public:
  explicit PreparedRouter(const RoutingPlan& plan) {
    Result<std::unique_ptr<RowRouter>> made = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      made = RowRouter::Create(plan);
    }
    router_ = Unwrap(std::move(made));
  }

  Int64Array Route(const FloatMatrix& vectors, std::optional<Int64Vector> shard_ids, int64_t row_offset,
                   nb::object routing_contexts) const {
    const int64_t dim = router_->plan().dim;
    if (static_cast<int64_t>(vectors.shape(1)) != dim) {
      Raise(Status::InvalidArgument(fmt::format("vectors have {} columns, expected dim={}", vectors.shape(1), dim)));
    }
    if (shard_ids && shard_ids->shape(0) != vectors.shape(0)) {
      Raise(Status::InvalidArgument(
          fmt::format("shard_ids has {} entries for {} vectors", shard_ids->shape(0), vectors.shape(0))));
    }
    const auto rows = static_cast<int64_t>(vectors.shape(0));
    // A row given None has an empty context, which the expression then reports as its missing variables.
    RoutingContexts contexts = ContextsFromPython(routing_contexts, rows, row_offset);
    for (auto& context : contexts) {
      if (!context) context.emplace();
    }
    const PyRecordBatch batch(vectors, std::nullopt, {}, {}, shard_ids, std::move(contexts));
    Result<std::vector<int64_t>> routed = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      routed = router_->Route(batch.view(), row_offset);
    }
    auto* out = new std::vector<int64_t>(Unwrap(std::move(routed)));
    nb::capsule owner(out, [](void* p) noexcept { delete static_cast<std::vector<int64_t>*>(p); });
    return Int64Array(out->data(), {out->size()}, owner);
  }

 private:
  std::unique_ptr<RowRouter> router_;
};

Int64Array Route(const RoutingPlan& plan, const FloatMatrix& vectors, std::optional<Int64Vector> shard_ids,
                 int64_t row_offset, nb::object routing_contexts) {
  return PreparedRouter(plan).Route(vectors, std::move(shard_ids), row_offset, std::move(routing_contexts));
}

// Builds one shard from a stream of batches without the GIL (the stream takes it per batch).
ShardInfo BuildShard(const ShardTask& task, nb::callable next_batch, std::optional<int64_t> size_hint) {
  StreamSource source(std::move(next_batch), size_hint);
  Result<ShardInfo> info = Status::Internal("not run");
  {
    nb::gil_scoped_release release;
    info = BuildShardAttempt(task, source);
  }
  source.RethrowIteratorError();
  return Unwrap(std::move(info));
}

// The driver's run handle; Python keeps it for the whole write.
class Run {
 public:
  // Runs without the GIL (call guards); a Python metrics sink takes it itself.
  static Result<Run> Begin(const WriteConfig& config, const std::string& writer_type) {
    ASSIGN_OR_RETURN(std::unique_ptr<DistributedWrite> run, DistributedWrite::Begin(config, writer_type));
    return Run(std::move(run));
  }
  std::string RunId() const { return run_->run_id(); }
  Result<BuildResult> Publish(const RoutingPlan& plan, std::vector<ShardInfo> attempts) {
    return run_->Publish(plan, std::move(attempts));
  }
  void Abort(const std::string& reason) { run_->Abort(Status::Internal(reason)); }

 private:
  explicit Run(std::unique_ptr<DistributedWrite> run) : run_(std::move(run)) {}
  std::unique_ptr<DistributedWrite> run_;
};

}  // namespace

void BindDistributed(nb::module_& m) {
  using NoGil = nb::call_guard<nb::gil_scoped_release>;
  m.def("plan_routing", &PlanRoutingFor, nb::arg("config"), nb::arg("sample").none() = nb::none(),
        "Validates the write config and resolves routing (trains centroids on `sample`).");
  m.def("route_rows", &Route, nb::arg("plan"), nb::arg("vectors"), nb::arg("shard_ids").none() = nb::none(),
        nb::arg("row_offset") = 0, nb::arg("routing_contexts").none() = nb::none(),
        "The shard of each row (int64 array); errors name the row. routing_contexts (CEL): one dict per row.");
  nb::class_<PreparedRouter>(m, "RowRouter")
      .def(nb::init<const RoutingPlan&>(), nb::arg("plan"),
           "Checks the plan and builds its router once (a CEL expression compiled once).")
      .def("route", &PreparedRouter::Route, nb::arg("vectors"), nb::arg("shard_ids").none() = nb::none(),
           nb::arg("row_offset") = 0, nb::arg("routing_contexts").none() = nb::none(),
           "As route_rows, with this router.");
  m.def("build_shard_attempt", &BuildShard, nb::arg("task"), nb::arg("next_batch"),
        nb::arg("size_hint").none() = nb::none(),
        "Claims an attempt folder, builds one shard from a stream of batches, uploads it; returns its info.");
  nb::class_<Run>(m, "DistributedWrite")
      .def_static("begin", &Run::Begin, nb::arg("config"), nb::arg("writer_type"), NoGil(),
                  "Opens the store and starts the run record (without the GIL).")
      .def_prop_ro("run_id", &Run::RunId)
      .def("publish", &Run::Publish, nb::arg("plan"), nb::arg("attempts"), NoGil())
      .def("abort", &Run::Abort, nb::arg("reason"), NoGil());
}

}  // namespace shardvec::py
