// Snapshot administration for Python (shardvec.admin): history, current, rollback and cleanup over
// shardvec/admin.h, with its result structs bound as classes with typed, read-only fields. The GIL is
// released while the store is read or written.
#include <nanobind/stl/map.h>
#include <nanobind/stl/shared_ptr.h>

#include "engine_common.h"
#include "format/run_record.h"
#include "shardvec/admin.h"
#include "shardvec/manifest_store.h"
#include "shardvec/verify.h"

namespace shardvec::py {
namespace {

// Opens the store and runs `call` on it without the GIL; raises the engine's error with it held.
template <typename Call>
auto WithStore(const std::string& store, const StoreOptions& store_options, Call call) {
  using R = decltype(call(std::declval<ObjectStore&>()));
  std::optional<R> result;
  {
    nb::gil_scoped_release release;
    Result<std::shared_ptr<ObjectStore>> opened = OpenStore(store, store_options);
    result.emplace(opened.ok() ? call(**opened) : R(opened.status()));
  }
  return Unwrap(std::move(*result));
}

std::vector<HistoryEntry> History(const std::string& store, const StoreOptions& store_options,
                                  int64_t limit, bool read_manifests) {
  return WithStore(store, store_options, [&](ObjectStore& s) {
    return ListSnapshots(s, HistoryOptions{.limit = limit, .read_manifests = read_manifests});
  });
}

std::optional<CurrentSnapshot> Current(const std::string& store,
                                       const StoreOptions& store_options) {
  return WithStore(store, store_options, [](ObjectStore& s) { return ReadCurrentSnapshot(s); });
}

RollbackResult Rollback(const std::string& store, const StoreOptions& store_options,
                        std::optional<std::string> run_id, std::optional<std::string> ref,
                        std::optional<int64_t> offset, bool previous) {
  const RollbackTarget target{std::move(run_id), std::move(ref), offset, previous};
  return WithStore(store, store_options, [&](ObjectStore& s) { return RollbackSnapshot(s, target); });
}

// ---- Run records (shardvec.run_registry): the engine's YAML format and the store's objects ----------

using RecordFields = std::map<std::string, std::optional<std::string>>;

RecordFields RunRecordFields(const RunRecord& r) {
  return {{"format_version", std::to_string(r.format_version)},
          {"run_id", r.run_id}, {"writer_type", r.writer_type}, {"status", r.status},
          {"started_at", r.started_at}, {"updated_at", r.updated_at}, {"lease_expires_at", r.lease_expires_at},
          {"s3_prefix", r.s3_prefix}, {"shard_prefix", r.shard_prefix}, {"db_path_template", r.db_path_template},
          {"manifest_ref", r.manifest_ref}, {"error_type", r.error_type}, {"error_message", r.error_message}};
}

nb::bytes EncodeRecord(const RecordFields& fields) {
  static const std::pair<const char*, std::string RunRecord::*> kRequired[] = {
      {"run_id", &RunRecord::run_id},         {"writer_type", &RunRecord::writer_type},
      {"status", &RunRecord::status},         {"started_at", &RunRecord::started_at},
      {"updated_at", &RunRecord::updated_at}, {"lease_expires_at", &RunRecord::lease_expires_at},
      {"s3_prefix", &RunRecord::s3_prefix},   {"shard_prefix", &RunRecord::shard_prefix},
      {"db_path_template", &RunRecord::db_path_template}};
  static const std::pair<const char*, std::optional<std::string> RunRecord::*> kOptional[] = {
      {"manifest_ref", &RunRecord::manifest_ref}, {"error_type", &RunRecord::error_type},
      {"error_message", &RunRecord::error_message}};
  RunRecord r;
  for (const auto& [name, member] : kRequired) {
    const auto it = fields.find(name);
    if (it == fields.end() || !it->second) throw nb::value_error((std::string("run record field ") + name + " is required").c_str());
    r.*member = *it->second;
  }
  for (const auto& [name, member] : kOptional) {
    if (const auto it = fields.find(name); it != fields.end()) r.*member = it->second;
  }
  const std::string yaml = EncodeRunRecord(r);
  return nb::bytes(yaml.data(), yaml.size());
}

RecordFields ParseRecord(nb::bytes yaml) {
  return RunRecordFields(Unwrap(ParseRunRecord(std::string_view(yaml.c_str(), yaml.size()))));
}

std::string StoreUrl(const std::string& store, const StoreOptions& store_options, const std::string& key) {
  return WithStore(store, store_options, [&](ObjectStore& s) { return Result<std::string>(s.Url(key)); });
}

void StorePut(const std::string& store, const StoreOptions& store_options, const std::string& key, nb::bytes data) {
  const std::string bytes(data.c_str(), data.size());
  WithStore(store, store_options, [&](ObjectStore& s) -> Result<bool> {
    RETURN_IF_ERROR(s.Put(key, bytes));
    return true;
  });
}

// Run records are small; anything larger is not one.
constexpr int64_t kMaxRunRecordBytes = 1 << 20;

nb::bytes StoreGet(const std::string& store, const StoreOptions& store_options, const std::string& key) {
  const std::string bytes =
      WithStore(store, store_options, [&](ObjectStore& s) { return s.Get(key, kMaxRunRecordBytes); });
  return nb::bytes(bytes.data(), bytes.size());
}

std::vector<std::string> StoreListKeys(const std::string& store, const StoreOptions& store_options,
                                       const std::string& prefix) {
  return WithStore(store, store_options, [&](ObjectStore& s) -> Result<std::vector<std::string>> {
    ASSIGN_OR_RETURN(ListResult listed, s.List(prefix));
    std::vector<std::string> keys;
    for (const ObjectInfo& object : listed.objects) keys.push_back(object.key);
    return keys;
  });
}

CleanupReport RunCleanup(const std::string& store, const StoreOptions& store_options,
                         bool dry_run, std::optional<int64_t> keep_last, std::optional<int64_t> older_than_seconds,
                         std::string shard_prefix, std::string run_registry_prefix,
                         std::vector<std::string> live_runs) {
  CleanupOptions options;
  options.shard_prefix = std::move(shard_prefix);
  options.run_registry_prefix = std::move(run_registry_prefix);
  options.live_runs = std::move(live_runs);
  options.dry_run = dry_run;
  options.keep_last = keep_last;
  if (older_than_seconds) options.older_than = std::chrono::seconds(*older_than_seconds);
  return WithStore(store, store_options, [&](ObjectStore& s) { return Cleanup(s, options); });
}

VerifyReport Verify(const std::string& store, const StoreOptions& store_options, std::optional<std::string> run_id,
                    std::optional<std::string> ref, std::optional<int64_t> offset, std::optional<int64_t> sample,
                    std::optional<uint64_t> seed, int64_t max_workers, std::shared_ptr<ManifestStore> manifest_store) {
  VerifyOptions options;
  options.manifest_store = std::move(manifest_store);
  if (run_id || ref || offset) options.snapshot = RollbackTarget{std::move(run_id), std::move(ref), offset};
  options.sample = sample;
  options.seed = seed;
  options.max_workers = max_workers;
  std::optional<Result<VerifyReport>> result;
  {
    nb::gil_scoped_release release;
    Result<std::shared_ptr<ObjectStore>> opened = OpenStore(store, store_options);
    result.emplace(opened.ok() ? VerifySnapshot(*opened, options) : Result<VerifyReport>(opened.status()));
  }
  return Unwrap(std::move(*result));
}

}  // namespace

void BindAdmin(nb::module_& m) {
  nb::class_<ManifestSummary>(m, "ManifestSummary", "What a manifest says about its snapshot.")
      .def_ro("created_at", &ManifestSummary::created_at)
      .def_ro("num_dbs", &ManifestSummary::num_dbs)
      .def_ro("total_vectors", &ManifestSummary::total_vectors, "the shards' row counts added up")
      .def_ro("dim", &ManifestSummary::dim, "0 when the manifest records none")
      .def_ro("metric", &ManifestSummary::metric)
      .def_ro("sharding_strategy", &ManifestSummary::sharding_strategy)
      .def_ro("shared_shards", &ManifestSummary::shared_shards, "shards shared with an earlier snapshot's run")
      .def_ro("base_run_id", &ManifestSummary::base_run_id, "the snapshot an update started from; '' for a build");
  nb::class_<HistoryEntry>(m, "HistoryEntry", "One published snapshot (a manifest under manifests/).")
      .def_ro("ref", &HistoryEntry::ref, "the manifest's URL (what rollback's ref takes)")
      .def_ro("run_id", &HistoryEntry::run_id)
      .def_ro("published_at", &HistoryEntry::published_at, "the manifest folder's UTC timestamp")
      .def_ro("current", &HistoryEntry::current, "whether _CURRENT names this manifest")
      .def_ro("manifest", &HistoryEntry::manifest, "the manifest's summary, or None when it was not read")
      .def_ro("manifest_error", &HistoryEntry::manifest_error, "why the manifest could not be read, or ''")
      .def("__repr__", [](const HistoryEntry& s) {
        return "HistoryEntry(run_id=" + s.run_id + ", published_at=" + s.published_at +
               (s.current ? ", current" : "") + ")";
      });
  nb::class_<CurrentSnapshot>(m, "CurrentSnapshot", "What _CURRENT says.")
      .def_ro("ref", &CurrentSnapshot::ref)
      .def_ro("run_id", &CurrentSnapshot::run_id)
      .def_ro("updated_at", &CurrentSnapshot::updated_at);
  nb::class_<RollbackResult>(m, "RollbackResult", "The manifest a rollback made current.")
      .def_ro("ref", &RollbackResult::ref)
      .def_ro("run_id", &RollbackResult::run_id)
      .def_ro("published_at", &RollbackResult::published_at)
      .def_ro("already_current", &RollbackResult::already_current);
  nb::class_<CleanupReport>(m, "CleanupReport", "What a cleanup deleted (or would delete on a dry run).")
      .def_ro("deleted_keys", &CleanupReport::deleted_keys)
      .def_ro("leftover_keys", &CleanupReport::leftover_keys, "leftovers of killed processes, removed too")
      .def_ro("removed_runs", &CleanupReport::removed_runs)
      .def_ro("kept_runs", &CleanupReport::kept_runs)
      .def_ro("objects", &CleanupReport::objects)
      .def_ro("bytes", &CleanupReport::bytes);

  nb::class_<VerifyProblem>(m, "VerifyProblem", "One thing wrong with a verified snapshot.")
      .def_ro("check", &VerifyProblem::check,
              "manifest, routing, missing, size, digest, schema, row_count or read")
      .def_ro("db_id", &VerifyProblem::db_id, "the shard, or None for a snapshot-wide problem")
      .def_ro("object", &VerifyProblem::object, "the URL concerned")
      .def_ro("message", &VerifyProblem::message)
      .def("__repr__", [](const VerifyProblem& p) { return "VerifyProblem(" + p.check + ": " + p.message + ")"; });
  nb::class_<VerifyReport>(m, "VerifyReport", "What verify found (ok when problems is empty).")
      .def_prop_ro("ok", &VerifyReport::ok)
      .def_ro("manifest_ref", &VerifyReport::manifest_ref)
      .def_ro("run_id", &VerifyReport::run_id)
      .def_ro("num_dbs", &VerifyReport::num_dbs)
      .def_ro("shards_checked", &VerifyReport::shards_checked, "shards whose presence and size were checked")
      .def_ro("shards_read", &VerifyReport::shards_read, "shards whose contents were read")
      .def_ro("sampled", &VerifyReport::sampled, "with sample: the db_ids whose contents were read")
      .def_ro("seed", &VerifyReport::seed)
      .def_ro("digests_absent", &VerifyReport::digests_absent)
      .def_ro("bytes_read", &VerifyReport::bytes_read)
      .def_ro("elapsed_ms", &VerifyReport::elapsed_ms)
      .def_ro("problems", &VerifyReport::problems);

  m.def("admin_history", &History, nb::arg("store"), nb::arg("store_options"), nb::arg("limit"),
        nb::arg("read_manifests"), "Published snapshots, newest first (limit 0: all).");
  m.def("admin_current", &Current, nb::arg("store"), nb::arg("store_options"),
        "What _CURRENT names, or None when the store has no pointer.");
  m.def("admin_rollback", &Rollback, nb::arg("store"), nb::arg("store_options"), nb::arg("run_id").none(),
        nb::arg("ref").none(), nb::arg("offset").none(), nb::arg("previous"),
        "Points _CURRENT at the selected manifest (exactly one selector).");
  m.def("admin_cleanup", &RunCleanup, nb::arg("store"), nb::arg("store_options"), nb::arg("dry_run"),
        nb::arg("keep_last").none(), nb::arg("older_than_seconds").none(), nb::arg("shard_prefix") = "shards",
        nb::arg("run_registry_prefix") = "runs", nb::arg("live_runs") = std::vector<std::string>(),
        "Deletes shard data no kept snapshot needs.");
  m.def("admin_verify", &Verify, nb::arg("store"), nb::arg("store_options"), nb::arg("run_id").none(),
        nb::arg("ref").none(), nb::arg("offset").none(), nb::arg("sample").none(), nb::arg("seed").none(),
        nb::arg("max_workers"), nb::arg("manifest_store").none() = nb::none(),
        "Checks a snapshot against its manifest (shardvec/verify.h); manifest_store None: beside the shards.");
  m.def("encode_run_record", &EncodeRecord, nb::arg("fields"), "A run record's YAML (the engine's run.yaml format).");
  m.def("parse_run_record", &ParseRecord, nb::arg("yaml"), "A run.yaml's fields (text or None each).");
  m.def("store_url", &StoreUrl, nb::arg("store"), nb::arg("store_options"), nb::arg("key"));
  m.def("store_put", &StorePut, nb::arg("store"), nb::arg("store_options"), nb::arg("key"), nb::arg("data"));
  m.def("store_get", &StoreGet, nb::arg("store"), nb::arg("store_options"), nb::arg("key"),
        "An object of at most 1 MiB.");
  m.def("store_list_keys", &StoreListKeys, nb::arg("store"), nb::arg("store_options"), nb::arg("prefix"));
}

}  // namespace shardvec::py
