// shardvec._engine.update: UpdateSharded (shardvec/update.h) over arrays read in place, without the
// GIL; the report comes back as a dict the Python layer turns into its dataclass.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "engine_common.h"
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
                 const std::string& base, bool strict, bool compact) {
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
    result = UpdateSharded(config, batch ? &batch->view() : nullptr, deletes,                            UpdateOptions{.base = base, .strict = strict, .compact = compact});
  }
  UpdateResult r = Unwrap(std::move(result));
  return nb::make_tuple(nb::cast(r.build), ReportDict(r.report));
}

}  // namespace

void BindUpdate(nb::module_& m) {
  m.def("update", &Update, nb::arg("config"), nb::arg("vectors").none() = nb::none(),
        nb::arg("int_ids").none() = nb::none(), nb::arg("str_ids") = std::vector<std::string>(),
        nb::arg("payloads") = std::vector<std::optional<std::string>>(), nb::arg("shard_ids").none() = nb::none(),
        nb::arg("routing_contexts").none() = nb::none(), nb::arg("delete_int_ids").none() = nb::none(),
        nb::arg("delete_str_ids") = std::vector<std::string>(), nb::arg("base") = "current",
        nb::arg("strict") = false, nb::arg("compact") = false,
        "Upserts rows (arrays read in place) and deletes ids in the base snapshot, rebuilding only the shards "
        "that change, and publishes; returns (BuildResult, report dict). The GIL is released.");
}

}  // namespace shardvec::py
