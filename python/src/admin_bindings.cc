// Snapshot administration for Python (shardvec.admin): history, current, rollback and cleanup over
// shardvec/admin.h, with its result structs bound as classes with typed, read-only fields. The GIL is
// released while the store is read or written.
#include "engine_common.h"
#include "shardvec/admin.h"

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

CleanupReport RunCleanup(const std::string& store, const StoreOptions& store_options,
                         bool dry_run, std::optional<int64_t> keep_last, std::optional<int64_t> older_than_seconds) {
  CleanupOptions options;
  options.dry_run = dry_run;
  options.keep_last = keep_last;
  if (older_than_seconds) options.older_than = std::chrono::seconds(*older_than_seconds);
  return WithStore(store, store_options, [&](ObjectStore& s) { return Cleanup(s, options); });
}

}  // namespace

void BindAdmin(nb::module_& m) {
  nb::class_<ManifestSummary>(m, "ManifestSummary", "What a manifest says about its snapshot.")
      .def_ro("created_at", &ManifestSummary::created_at)
      .def_ro("num_dbs", &ManifestSummary::num_dbs)
      .def_ro("total_vectors", &ManifestSummary::total_vectors, "the shards' row counts added up")
      .def_ro("dim", &ManifestSummary::dim, "0 when the manifest records none")
      .def_ro("metric", &ManifestSummary::metric)
      .def_ro("sharding_strategy", &ManifestSummary::sharding_strategy);
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
      .def_ro("published_at", &RollbackResult::published_at);
  nb::class_<CleanupReport>(m, "CleanupReport", "What a cleanup deleted (or would delete on a dry run).")
      .def_ro("deleted_keys", &CleanupReport::deleted_keys)
      .def_ro("leftover_keys", &CleanupReport::leftover_keys, "leftovers of killed processes, removed too")
      .def_ro("removed_runs", &CleanupReport::removed_runs)
      .def_ro("kept_runs", &CleanupReport::kept_runs)
      .def_ro("objects", &CleanupReport::objects)
      .def_ro("bytes", &CleanupReport::bytes);

  m.def("admin_history", &History, nb::arg("store"), nb::arg("store_options"), nb::arg("limit"),
        nb::arg("read_manifests"), "Published snapshots, newest first (limit 0: all).");
  m.def("admin_current", &Current, nb::arg("store"), nb::arg("store_options"),
        "What _CURRENT names, or None when the store has no pointer.");
  m.def("admin_rollback", &Rollback, nb::arg("store"), nb::arg("store_options"), nb::arg("run_id").none(),
        nb::arg("ref").none(), nb::arg("offset").none(), nb::arg("previous"),
        "Points _CURRENT at the selected manifest (exactly one selector).");
  m.def("admin_cleanup", &RunCleanup, nb::arg("store"), nb::arg("store_options"), nb::arg("dry_run"),
        nb::arg("keep_last").none(), nb::arg("older_than_seconds").none(),
        "Deletes shard data no kept snapshot needs.");
}

}  // namespace shardvec::py
