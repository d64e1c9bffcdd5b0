// shardvec._engine's distributed-write functions (include/shardvec/distributed.h): plans and shard
// infos travel as plain dicts so Python can pickle them to Spark, Dask and Ray workers.
#include <fmt/format.h>

#include <memory>

#include "engine_common.h"

namespace shardvec::py {
namespace {

using Int64Array = nb::ndarray<nb::numpy, int64_t, nb::ndim<1>>;
using FloatArray = nb::ndarray<nb::numpy, float, nb::ndim<2>>;

nb::object MatrixToNumpy(const std::optional<Matrix>& m) {
  if (!m) return nb::none();
  auto* data = new std::vector<float>(m->data);
  nb::capsule owner(data, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
  return nb::cast(FloatArray(data->data(), {static_cast<size_t>(m->rows), static_cast<size_t>(m->cols)}, owner));
}

std::optional<Matrix> MatrixFromPython(const nb::dict& d, const char* key) {
  if (!d.contains(key) || d[key].is_none()) return std::nullopt;
  return CopyMatrix(nb::cast<FloatMatrix>(d[key]));
}

nb::dict PlanToDict(const RoutingPlan& p) {
  nb::dict d;
  d["strategy"] = std::string(StrategyName(p.strategy));
  d["metric"] = std::string(MetricName(p.metric));
  d["dim"] = p.dim;
  d["num_dbs"] = p.num_dbs;
  d["num_probes"] = p.num_probes;
  d["num_hash_bits"] = p.num_hash_bits;
  d["centroids"] = MatrixToNumpy(p.centroids);
  d["hyperplanes"] = MatrixToNumpy(p.hyperplanes);
  d["cel_expr"] = p.cel_expr;
  d["cel_columns"] = p.cel_columns;
  d["routing_values"] = RoutingValuesToPython(p.routing_values);
  return d;
}

RoutingPlan PlanFromDict(const nb::dict& d) {
  RoutingPlan p;
  p.strategy = Unwrap(ParseStrategy(nb::cast<std::string>(d["strategy"]), "plan.strategy"));
  p.metric = Unwrap(ParseMetric(nb::cast<std::string>(d["metric"]), "plan.metric"));
  p.dim = nb::cast<int64_t>(d["dim"]);
  p.num_dbs = nb::cast<int64_t>(d["num_dbs"]);
  p.num_probes = nb::cast<int64_t>(d["num_probes"]);
  p.num_hash_bits = nb::cast<int64_t>(d["num_hash_bits"]);
  p.centroids = MatrixFromPython(d, "centroids");
  p.hyperplanes = MatrixFromPython(d, "hyperplanes");
  if (d.contains("cel_expr")) p.cel_expr = nb::cast<std::string>(d["cel_expr"]);
  if (d.contains("cel_columns")) p.cel_columns = nb::cast<std::map<std::string, std::string>>(d["cel_columns"]);
  p.routing_values = RoutingValuesFromPython(d, "routing_values", "plan.routing_values");
  return p;
}

ShardInfo ShardInfoFromDict(const nb::handle& h) {
  const nb::dict d = nb::cast<nb::dict>(h);
  ShardInfo s;
  s.db_id = nb::cast<int64_t>(d["db_id"]);
  s.db_url = nb::cast<std::string>(d["db_url"]);
  s.row_count = nb::cast<int64_t>(d["row_count"]);
  s.db_bytes = nb::cast<int64_t>(d["db_bytes"]);
  s.checkpoint_id = nb::cast<std::string>(d["checkpoint_id"]);
  s.digest = nb::cast<std::string>(d["digest"]);
  s.attempt = nb::cast<int64_t>(d["attempt"]);
  return s;
}

nb::dict PlanRoutingFor(const nb::dict& settings, std::optional<FloatMatrix> sample) {
  const WriteConfig config = ConfigFromSettings(settings);
  std::optional<Matrix> rows;
  if (sample) rows = CopyMatrix(*sample);
  Result<RoutingPlan> plan = Status::Internal("not run");
  {
    nb::gil_scoped_release release;
    plan = PlanRouting(config, rows ? &*rows : nullptr);
  }
  return PlanToDict(Unwrap(std::move(plan)));
}

// A worker's router: the plan is checked and its router built once, then reused for every batch.
class PreparedRouter {
 public:
  explicit PreparedRouter(const nb::dict& plan_dict) {
    const RoutingPlan plan = PlanFromDict(plan_dict);
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

Int64Array Route(const nb::dict& plan_dict, const FloatMatrix& vectors, std::optional<Int64Vector> shard_ids,
                 int64_t row_offset, nb::object routing_contexts) {
  return PreparedRouter(plan_dict).Route(vectors, std::move(shard_ids), row_offset, std::move(routing_contexts));
}

nb::dict BuildShard(const nb::dict& task_dict, nb::callable next_batch, std::optional<int64_t> size_hint) {
  ShardTask task;
  std::map<std::string, std::string> store_options;
  task.store = nb::cast<std::string>(task_dict["store"]);
  store_options = nb::cast<std::map<std::string, std::string>>(task_dict["store_options"]);
  task.store_options = ToStoreOptions(store_options);
  task.local_root = nb::cast<std::string>(task_dict["local_root"]);
  task.run_id = nb::cast<std::string>(task_dict["run_id"]);
  task.db_id = nb::cast<int64_t>(task_dict["db_id"]);
  task.dim = nb::cast<int64_t>(task_dict["dim"]);
  task.metric = Unwrap(ParseMetric(nb::cast<std::string>(task_dict["metric"]), "task.metric"));
  task.first_attempt = nb::cast<int64_t>(task_dict["first_attempt"]);
  StreamSource source(std::move(next_batch), size_hint);
  Result<ShardInfo> info = Status::Internal("not run");
  {
    nb::gil_scoped_release release;
    info = BuildShardAttempt(task, source);
  }
  source.RethrowIteratorError();
  return ShardInfoDict(Unwrap(std::move(info)));
}

// The driver's run handle; Python keeps it for the whole write.
class Run {
 public:
  Run(const nb::dict& settings, const std::string& writer_type) {
    const WriteConfig config = ConfigFromSettings(settings);
    Result<std::unique_ptr<DistributedWrite>> begun = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      begun = DistributedWrite::Begin(config, writer_type);
    }
    run_ = Unwrap(std::move(begun));
  }
  std::string RunId() const { return run_->run_id(); }
  nb::dict Publish(const nb::dict& plan_dict, const nb::list& attempts) {
    const RoutingPlan plan = PlanFromDict(plan_dict);
    std::vector<ShardInfo> infos;
    for (nb::handle a : attempts) infos.push_back(ShardInfoFromDict(a));
    Result<BuildResult> result = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      result = run_->Publish(plan, std::move(infos));
    }
    return BuildResultDict(Unwrap(std::move(result)));
  }
  void Abort(const std::string& reason) {
    nb::gil_scoped_release release;
    run_->Abort(Status::Internal(reason));
  }

 private:
  std::unique_ptr<DistributedWrite> run_;
};

}  // namespace

void BindDistributed(nb::module_& m) {
  m.def("plan_routing", &PlanRoutingFor, nb::arg("settings"), nb::arg("sample").none() = nb::none(),
        "Validates the write settings and resolves routing (trains centroids on `sample`).");
  m.def("route_rows", &Route, nb::arg("plan"), nb::arg("vectors"), nb::arg("shard_ids").none() = nb::none(),
        nb::arg("row_offset") = 0, nb::arg("routing_contexts").none() = nb::none(),
        "The shard of each row (int64 array); errors name the row. routing_contexts (CEL): one dict per row.");
  nb::class_<PreparedRouter>(m, "RowRouter")
      .def(nb::init<const nb::dict&>(), nb::arg("plan"),
           "Checks the plan and builds its router once (a CEL expression compiled once).")
      .def("route", &PreparedRouter::Route, nb::arg("vectors"), nb::arg("shard_ids").none() = nb::none(),
           nb::arg("row_offset") = 0, nb::arg("routing_contexts").none() = nb::none(),
           "As route_rows, with this router.");
  m.def("build_shard_attempt", &BuildShard, nb::arg("task"), nb::arg("next_batch"),
        nb::arg("size_hint").none() = nb::none(),
        "Claims an attempt folder, builds one shard from a stream of batches, uploads it; returns its info.");
  nb::class_<Run>(m, "DistributedWrite")
      .def(nb::init<const nb::dict&, const std::string&>(), nb::arg("settings"), nb::arg("writer_type"))
      .def_prop_ro("run_id", &Run::RunId)
      .def("publish", &Run::Publish, nb::arg("plan"), nb::arg("attempts"))
      .def("abort", &Run::Abort, nb::arg("reason"));
}

}  // namespace shardvec::py
