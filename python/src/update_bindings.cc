// shardvec._engine.update: UpdateSharded (shardvec/update.h) over arrays read in place, without the
// GIL; the report comes back as a dict the Python layer turns into its dataclass. The same update in
// phases for the Spark, Dask and Ray writers: UpdateRun (the driver), rebuild_update_shard (a worker's
// task), and the picklable UpdatePlan / UpdateShardPlan / UpdateShardResult they exchange.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>
#include <nanobind/stl/map.h>

#include <cstring>
#include <fmt/format.h>

#include "engine_common.h"
#include "struct_binding.h"
#include "shardvec/update.h"

namespace nb = nanobind;

namespace shardvec::py {
namespace {

nb::dict ReportDict(const UpdateReport& r) {
  nb::dict d;
  d["base_run_id"] = r.base_run_id;
  d["base_manifest_ref"] = r.base_manifest_ref;
  d["upserted"] = r.upserted;
  d["replaced"] = r.replaced;
  d["deleted"] = r.deleted;
  d["missing_deletes"] = r.missing_deletes;
  d["used_id_index"] = r.used_id_index;
  nb::list rebuilt;
  for (const UpdateShardChange& c : r.rebuilt) rebuilt.append(nb::make_tuple(c.db_id, c.base_rows, c.rows));
  d["rebuilt"] = rebuilt;
  d["edited_in_place"] = r.edited_in_place;
  d["rebased"] = r.rebased;
  d["shared_shards"] = r.shared_shards;
  d["base_imbalance"] = r.base_imbalance;
  d["imbalance"] = r.imbalance;
  d["upsert_centroid_distance"] = r.upsert_centroid_distance ? nb::object(nb::float_(*r.upsert_centroid_distance)) : nb::none();
  d["base_centroid_distance"] = r.base_centroid_distance ? nb::object(nb::float_(*r.base_centroid_distance)) : nb::none();
  d["rebuild_advised"] = r.rebuild_advised;
  d["advice"] = r.advice;
  return d;
}

nb::tuple Update(const WriteConfig& config, std::optional<FloatMatrix> vectors, std::optional<Int64Vector> int_ids,
                 std::vector<std::string> str_ids, std::vector<std::optional<std::string>> payloads,
                 std::optional<Int64Vector> shard_ids, nb::object routing_contexts,
                 std::optional<Int64Vector> delete_int_ids, std::vector<std::string> delete_str_ids,
                 const std::string& base, bool strict, bool compact, bool rebase, bool retrain) {
  std::optional<PyRecordBatch> batch;
  if (vectors) {
    batch.emplace(*vectors, int_ids, std::move(str_ids), std::move(payloads), shard_ids,
                  ContextsFromPython(routing_contexts, static_cast<int64_t>(vectors->shape(0))));
  }
  std::vector<RecordId> deletes;
  if (delete_int_ids) {
    for (size_t i = 0; i < delete_int_ids->shape(0); ++i) deletes.emplace_back(delete_int_ids->data()[i]);
  }
  for (std::string& id : delete_str_ids) deletes.emplace_back(std::move(id));
  Result<UpdateResult> result = Status::Internal("not run");
  {
    nb::gil_scoped_release release;
    result = UpdateSharded(config, batch ? &batch->view() : nullptr, deletes,
                           UpdateOptions{.base = base, .strict = strict, .compact = compact, .rebase = rebase,
                                         .retrain = retrain});
  }
  UpdateResult r = Unwrap(std::move(result));
  return nb::make_tuple(nb::cast(r.build), ReportDict(r.report));
}

// Ids from Python: int (not bool) or str, errors naming `field` and the entry.
std::vector<RecordId> IdsFromPython(const nb::sequence& values, const char* field) {
  std::vector<RecordId> ids;
  for (nb::handle v : values) {
    if (nb::isinstance<nb::int_>(v) && !nb::isinstance<nb::bool_>(v)) {
      ids.emplace_back(nb::cast<int64_t>(v));
    } else if (nb::isinstance<nb::str>(v)) {
      ids.emplace_back(nb::cast<std::string>(v));
    } else {
      throw nb::type_error((std::string(field) + "[" + std::to_string(ids.size()) + "] must be an int or a str, got " +
                            nb::cast<std::string>(nb::str(nb::handle(Py_TYPE(v.ptr())).attr("__name__"))))
                               .c_str());
    }
  }
  return ids;
}

nb::list IdsToPython(const std::vector<RecordId>& ids) {
  nb::list out;
  for (const RecordId& id : ids) out.append(IdToPython(id));
  return out;
}

template <typename T>
auto IdsGetter(std::vector<RecordId> T::*member) {
  return [member](const T& self) { return IdsToPython(self.*member); };
}
template <typename T>
auto IdsSetter(std::vector<RecordId> T::*member, const char* field) {
  return [member, field](T& self, const nb::sequence& values) { self.*member = IdsFromPython(values, field); };
}

// A vector of 64-bit hashes as bytes (8 each, native order), for pickling.
template <typename T>
auto HashesGetter(std::vector<uint64_t> T::*member) {
  return [member](const T& self) {
    const std::vector<uint64_t>& v = self.*member;
    return nb::bytes(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(uint64_t));
  };
}
template <typename T>
auto HashesSetter(std::vector<uint64_t> T::*member, const char* field) {
  return [member, field](T& self, nb::bytes b) {
    if (b.size() % sizeof(uint64_t) != 0) {
      throw nb::value_error((std::string(field) + " must be 8 bytes per hash (got " + std::to_string(b.size()) +
                             " bytes)").c_str());
    }
    std::vector<uint64_t>& v = self.*member;
    v.resize(b.size() / sizeof(uint64_t));
    std::memcpy(v.data(), b.c_str(), b.size());
  };
}

std::vector<RecordId> IdColumns(std::optional<Int64Vector> int_ids, std::vector<std::string> str_ids) {
  std::vector<RecordId> ids;
  if (int_ids) {
    for (size_t i = 0; i < int_ids->shape(0); ++i) ids.emplace_back(int_ids->data()[i]);
  }
  for (std::string& id : str_ids) ids.emplace_back(std::move(id));
  return ids;
}

// The driver's update run; Python keeps it from begin to finish or abort.
class UpdateRunHandle {
 public:
  static Result<UpdateRunHandle> Begin(const WriteConfig& config, const std::string& writer_type, const std::string& base,
                                       bool strict, bool compact) {
    ASSIGN_OR_RETURN(std::unique_ptr<UpdateRun> run,
                     UpdateRun::Begin(config, UpdateOptions{.base = base, .strict = strict, .compact = compact}, writer_type));
    return UpdateRunHandle(std::move(run));
  }
  std::string RunId() const { return run_->run_id(); }
  RoutingPlan Routing() const { return run_->routing(); }

  // The upserts' ids (int64 array or str list) with their shards (one per id), and the deletes.
  UpdatePlan Plan(std::optional<Int64Vector> upsert_int_ids, std::vector<std::string> upsert_str_ids,
                  std::optional<Int64Vector> upsert_db_ids, std::optional<Int64Vector> delete_int_ids,
                  std::vector<std::string> delete_str_ids) {
    std::vector<RecordId> ids = IdColumns(upsert_int_ids, std::move(upsert_str_ids));
    const size_t routed = upsert_db_ids ? upsert_db_ids->shape(0) : 0;
    if (routed != ids.size()) {
      Raise(Status::InvalidArgument(
          fmt::format("upsert_db_ids has {} entries for {} upserted ids; give each id its shard", routed, ids.size())));
    }
    std::vector<UpsertRoute> upserts;
    upserts.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) upserts.push_back(UpsertRoute{std::move(ids[i]), upsert_db_ids->data()[i]});
    std::vector<RecordId> deletes = IdColumns(delete_int_ids, std::move(delete_str_ids));
    Result<UpdatePlan> plan = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      plan = run_->Plan(upserts, deletes);
    }
    return Unwrap(std::move(plan));
  }

  nb::tuple Finish(std::vector<UpdateShardResult> results) {
    Result<UpdateResult> result = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      result = run_->Finish(std::move(results));
    }
    UpdateResult r = Unwrap(std::move(result));
    return nb::make_tuple(nb::cast(r.build), ReportDict(r.report));
  }

  void Abort(const std::string& reason) { run_->Abort(Status::Internal(reason)); }

 private:
  explicit UpdateRunHandle(std::unique_ptr<UpdateRun> run) : run_(std::move(run)) {}
  std::unique_ptr<UpdateRun> run_;
};

UpdateShardResult RebuildShardTask(const UpdatePlan& plan, int64_t db_id, std::optional<FloatMatrix> vectors,
                                   std::optional<Int64Vector> int_ids, std::vector<std::string> str_ids,
                                   std::vector<std::optional<std::string>> payloads) {
  std::optional<PyRecordBatch> batch;
  if (vectors) batch.emplace(*vectors, int_ids, std::move(str_ids), std::move(payloads), std::nullopt);
  Result<UpdateShardResult> result = Status::Internal("not run");
  {
    nb::gil_scoped_release release;
    result = RebuildUpdateShard(plan, db_id, batch ? &batch->view() : nullptr);
  }
  return Unwrap(std::move(result));
}

void BindUpdateTypes(nb::module_& m) {
  StructBinding<UpdateShardPlan>(m, "UpdateShardPlan", "One shard an update rebuilds (picklable).")
      .field("db_id", &UpdateShardPlan::db_id, "")
      .field("upserts", &UpdateShardPlan::upserts, "upserted rows routed to this shard")
      .field("upsert_digest", &UpdateShardPlan::upsert_digest, "the wrapping sum of those ids' hashes")
      .property("replaced", IdsGetter(&UpdateShardPlan::replaced), IdsSetter(&UpdateShardPlan::replaced, "replaced"),
                "upserted ids the base's id index places here")
      .property("deleted", IdsGetter(&UpdateShardPlan::deleted), IdsSetter(&UpdateShardPlan::deleted, "deleted"),
                "ids to delete the base's id index places here")
      .finish(true);
  StructBinding<UpdatePlan>(m, "UpdatePlan", "What an update's driver decided, for its tasks (picklable).")
      .field("store", &UpdatePlan::store, "")
      .field("store_options", &UpdatePlan::store_options, "")
      .field("local_root", &UpdatePlan::local_root, "")
      .field("run_id", &UpdatePlan::run_id, "")
      .field("dim", &UpdatePlan::dim, "")
      .field("metric", &UpdatePlan::metric, "")
      .field("quantization", &UpdatePlan::quantization, "")
      .field("sublists_per_shard", &UpdatePlan::sublists_per_shard, "")
      .field("filter_columns", &UpdatePlan::filter_columns, "")
      .field("shard_prefix", &UpdatePlan::shard_prefix, "")
      .field("db_path_template", &UpdatePlan::db_path_template, "")
      .field("base_manifest_ref", &UpdatePlan::base_manifest_ref, "")
      .field("base_run_id", &UpdatePlan::base_run_id, "")
      .field("base_published_at", &UpdatePlan::base_published_at, "")
      .property(
          "base_manifest", [](const UpdatePlan& p) { return nb::bytes(p.base_manifest.data(), p.base_manifest.size()); },
          [](UpdatePlan& p, nb::bytes b) { p.base_manifest.assign(b.c_str(), b.size()); }, "the base's manifest bytes")
      .field("shards", &UpdatePlan::shards, "every shard to rebuild, ascending db_id")
      .field("upserted", &UpdatePlan::upserted, "")
      .property("deletes", IdsGetter(&UpdatePlan::deletes), IdsSetter(&UpdatePlan::deletes, "deletes"),
                "every id to delete (distinct)")
      .field("used_id_index", &UpdatePlan::used_id_index, "")
      .field("compact", &UpdatePlan::compact, "every shard rebuilt whole, none edited in place")
      .finish(true);
  StructBinding<UpdateShardResult>(m, "UpdateShardResult", "What one shard's rebuild reports (picklable).")
      .field("db_id", &UpdateShardResult::db_id, "")
      .field("info", &UpdateShardResult::info, "")
      .field("base_rows", &UpdateShardResult::base_rows, "")
      .field("base_sublists", &UpdateShardResult::base_sublists, "")
      .field("upserts", &UpdateShardResult::upserts, "")
      .field("replaced", &UpdateShardResult::replaced, "")
      .field("deleted", &UpdateShardResult::deleted, "")
      .property("deleted_ids", IdsGetter(&UpdateShardResult::deleted_ids),
                IdsSetter(&UpdateShardResult::deleted_ids, "deleted_ids"), "")
      .field("base_distance_sum", &UpdateShardResult::base_distance_sum, "")
      .field("base_distance_rows", &UpdateShardResult::base_distance_rows, "")
      .field("edited_in_place", &UpdateShardResult::edited_in_place, "")
      .field("upsert_distance_sum", &UpdateShardResult::upsert_distance_sum, "")
      .property("id_hashes", HashesGetter(&UpdateShardResult::id_hashes),
                HashesSetter(&UpdateShardResult::id_hashes, "UpdateShardResult.id_hashes"),
                "the id index hashes of the new shard's rows (rebuilt whole) or of the rows added (edited in place), "
                "8 bytes each (native order)")
      .property("removed_id_hashes", HashesGetter(&UpdateShardResult::removed_id_hashes),
                HashesSetter(&UpdateShardResult::removed_id_hashes, "UpdateShardResult.removed_id_hashes"),
                "edited in place: the id index hashes of the base rows removed, 8 bytes each (native order)")
      .finish(true);
}

}  // namespace

void BindUpdate(nb::module_& m) {
  BindUpdateTypes(m);
  // How many times an update with rebase is redone on a newer current snapshot (the distributed
  // writers' driver loop uses it too).
  m.attr("MAX_REBASES") = kMaxRebases;
  using NoGil = nb::call_guard<nb::gil_scoped_release>;
  nb::class_<UpdateRunHandle>(m, "UpdateRun")
      .def_static("begin", &UpdateRunHandle::Begin, nb::arg("config"), nb::arg("writer_type"), nb::arg("base") = "current",
                  nb::arg("strict") = false, nb::arg("compact") = false, NoGil(),
                  "Loads and checks the base, claims the run (without the GIL); the shards are rebuilt by tasks.")
      .def_prop_ro("run_id", &UpdateRunHandle::RunId)
      .def_prop_ro("routing", &UpdateRunHandle::Routing, "The base's routing plan: how workers route the upserts.")
      .def("plan", &UpdateRunHandle::Plan, nb::arg("upsert_int_ids").none() = nb::none(),
           nb::arg("upsert_str_ids") = std::vector<std::string>(), nb::arg("upsert_db_ids").none() = nb::none(),
           nb::arg("delete_int_ids").none() = nb::none(), nb::arg("delete_str_ids") = std::vector<std::string>(),
           "Checks the ids and finds the shards to rebuild; returns the UpdatePlan the tasks take.")
      .def("finish", &UpdateRunHandle::Finish, nb::arg("results"),
           "Composes and publishes the snapshot from the tasks' UpdateShardResults; returns (BuildResult, report dict).")
      .def("abort", &UpdateRunHandle::Abort, nb::arg("reason"), NoGil());
  m.def("rebuild_update_shard", &RebuildShardTask, nb::arg("plan"), nb::arg("db_id"),
        nb::arg("vectors").none() = nb::none(), nb::arg("int_ids").none() = nb::none(),
        nb::arg("str_ids") = std::vector<std::string>(), nb::arg("payloads") = std::vector<std::optional<std::string>>(),
        "Rebuilds one planned shard from its base file and its upserts (arrays read in place, without the GIL); "
        "returns its UpdateShardResult.");
  m.def("update", &Update, nb::arg("config"), nb::arg("vectors").none() = nb::none(),
        nb::arg("int_ids").none() = nb::none(), nb::arg("str_ids") = std::vector<std::string>(),
        nb::arg("payloads") = std::vector<std::optional<std::string>>(), nb::arg("shard_ids").none() = nb::none(),
        nb::arg("routing_contexts").none() = nb::none(), nb::arg("delete_int_ids").none() = nb::none(),
        nb::arg("delete_str_ids") = std::vector<std::string>(), nb::arg("base") = "current",
        nb::arg("strict") = false, nb::arg("compact") = false, nb::arg("rebase") = false, nb::arg("retrain") = false,
        "Upserts rows (arrays read in place) and deletes ids in the base snapshot, rebuilding only the shards "
        "that change, and publishes; returns (BuildResult, report dict). The GIL is released.");
}

}  // namespace shardvec::py
