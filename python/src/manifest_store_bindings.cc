// Manifest stores in Python: the engine's ManifestStore as shardvec._engine.ManifestStore (the object
// layout behind shardvec.manifest_store.S3ManifestStore), and PythonManifestStore, the adapter through
// which the engine uses any Python object implementing the ManifestStore protocol (publish,
// load_current, load_manifest, list_manifests, set_current). Manifests cross as the JSON form of
// shardvec.manifest (manifest_to_json / manifest_from_json).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <fmt/format.h>

#include <chrono>
#include <tuple>

#include "common/time_util.h"
#include "engine_common.h"
#include "error_translation.h"
#include "format/manifest.h"
#include "shardvec/manifest_store.h"

namespace shardvec::py {
namespace {

using RefTuple = std::tuple<std::string, std::string, std::string>;  // ref, run_id, published_at

// ---- Manifest <-> the JSON form of shardvec.manifest --------------------------------------------

nlohmann::json ManifestToJson(const Manifest& m) {
  nlohmann::json shards = nlohmann::json::array();
  for (const ManifestShard& s : m.shards) {
    shards.push_back({{"db_id", s.db_id},
                      {"db_url", s.db_url ? nlohmann::json(*s.db_url) : nlohmann::json()},
                      {"attempt", s.attempt},
                      {"row_count", s.row_count},
                      {"db_bytes", s.db_bytes},
                      {"checkpoint_id", s.checkpoint_id ? nlohmann::json(*s.checkpoint_id) : nlohmann::json()},
                      {"writer_info", s.writer_info}});
  }
  return {{"required_build",
           {{"run_id", m.run_id},
            {"created_at", m.created_at},
            {"num_dbs", m.num_dbs},
            {"s3_prefix", m.s3_prefix},
            {"key_col", m.key_col},
            {"sharding", m.sharding},
            {"db_path_template", m.db_path_template},
            {"shard_prefix", m.shard_prefix},
            {"format_version", m.format_version},
            {"key_encoding", m.key_encoding}}},
          {"shards", std::move(shards)},
          {"custom", m.custom}};
}

}  // namespace

// A manifest from a Python store, checked exactly as a stored one is: it goes through the manifest's
// serialised form and back, so whatever the reference's parse-time validation rejects is rejected.
Result<Manifest> ManifestFromJson(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto corrupt = [](std::string why) {
    return Status::Corruption("manifest from the manifest store: " + why).WithKind(ErrorKind::kManifestParse);
  };
  if (!j.is_object() || !j.contains("required_build") || !j["required_build"].is_object() ||
      !j.contains("shards") || !j["shards"].is_array()) {
    return corrupt("expected required_build, shards and custom");
  }
  try {
    const nlohmann::json& b = j["required_build"];
    Manifest m;
    m.run_id = b.at("run_id").get<std::string>();
    m.created_at = b.at("created_at").get<std::string>();
    m.num_dbs = b.at("num_dbs").get<int64_t>();
    m.s3_prefix = b.at("s3_prefix").get<std::string>();
    m.key_col = b.value("key_col", m.key_col);
    if (b.contains("sharding")) m.sharding = b["sharding"];
    m.db_path_template = b.value("db_path_template", m.db_path_template);
    m.shard_prefix = b.value("shard_prefix", m.shard_prefix);
    m.format_version = b.value("format_version", m.format_version);
    m.key_encoding = b.value("key_encoding", m.key_encoding);
    if (j.contains("custom") && !j["custom"].is_null()) m.custom = j["custom"];
    for (const nlohmann::json& s : j["shards"]) {
      ManifestShard shard;
      shard.db_id = s.at("db_id").get<int64_t>();
      if (s.contains("db_url") && !s["db_url"].is_null()) shard.db_url = s["db_url"].get<std::string>();
      shard.attempt = s.value("attempt", int64_t{0});
      shard.row_count = s.value("row_count", int64_t{0});
      shard.db_bytes = s.value("db_bytes", int64_t{0});
      if (s.contains("checkpoint_id") && !s["checkpoint_id"].is_null()) {
        shard.checkpoint_id = s["checkpoint_id"].get<std::string>();
      }
      if (s.contains("writer_info") && s["writer_info"].is_object()) shard.writer_info = s["writer_info"];
      m.shards.push_back(std::move(shard));
    }
    ASSIGN_OR_RETURN(std::string bytes, SerializeManifest(m));
    return ParseManifest(bytes);
  } catch (const nlohmann::json::exception& e) {
    return corrupt(e.what());
  }
}

namespace {

// ---- The adapter --------------------------------------------------------------------------------

bool IsFinalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

// Calls a Python manifest store with the GIL held; an exception it raises becomes a Status carrying
// it (error_translation.h), so the engine's caller re-raises that same exception.
class PythonManifestStore final : public ManifestStore {
 public:
  explicit PythonManifestStore(nb::object store) : store_(std::move(store)) {}

  ~PythonManifestStore() override {
    // At interpreter exit the object goes with the interpreter; the GIL can no longer be taken.
    if (!Py_IsInitialized() || IsFinalizing()) {
      store_.release();
      return;
    }
    nb::gil_scoped_acquire gil;
    store_.reset();
  }

  Result<ManifestRef> Publish(const Manifest& manifest, const PublishGuard& guard) override {
    return Call<ManifestRef>("publish", [&]() -> Result<ManifestRef> {
      // A store that checks the guard inside its own publish transaction (PostgresManifestStore)
      // gets the run's start instead of the check below, which could race another publisher.
      const bool atomic_guard = guard.policy == PublishPolicy::kRejectIfNewer &&
                                nb::hasattr(store_, "publish_checks_run_started");
      if (guard.policy == PublishPolicy::kRejectIfNewer && !atomic_guard) {
        std::optional<ManifestRef> current = RefOrNone(store_.attr("load_current")(), "load_current");
        const std::string started = FormatTimestamp(guard.run_started);
        if (current && current->published_at > started) {
          return Status::Conflict(fmt::format(
              "PublishConflictError: the manifest store's current manifest '{}' (run_id={}) was published at {}, "
              "after this run started at {}; this run's manifest was not published (use the last-writer-wins "
              "publish policy to replace it)", current->ref, current->run_id, current->published_at, started))
              .WithKind(ErrorKind::kPublishConflict);
        }
      }
      nb::object parsed = Helper("manifest_from_json")(ManifestToJson(manifest).dump());
      nb::object returned =
          atomic_guard
              ? store_.attr("publish")(
                    nb::arg("run_id") = manifest.run_id, nb::arg("required_build") = parsed.attr("required_build"),
                    nb::arg("shards") = parsed.attr("shards"), nb::arg("custom") = parsed.attr("custom"),
                    nb::arg("run_started") = nb::module_::import_("shardvec.manifest")
                                                 .attr("parse_timestamp")(FormatTimestamp(guard.run_started)))
              : store_.attr("publish")(
                    nb::arg("run_id") = manifest.run_id, nb::arg("required_build") = parsed.attr("required_build"),
                    nb::arg("shards") = parsed.attr("shards"), nb::arg("custom") = parsed.attr("custom"));
      if (nb::hasattr(returned, "ref")) return ToRef(returned, "publish");
      return ManifestRef{nb::cast<std::string>(nb::str(returned)), manifest.run_id, FormatTimestamp(NowUtc())};
    });
  }

  Result<std::optional<ManifestRef>> LoadCurrent() override {
    return Call<std::optional<ManifestRef>>("load_current", [&]() -> Result<std::optional<ManifestRef>> {
      return RefOrNone(store_.attr("load_current")(), "load_current");
    });
  }

  Result<Manifest> LoadManifest(const std::string& ref) override {
    auto text = Call<std::string>("load_manifest", [&]() -> Result<std::string> {
      nb::object parsed = store_.attr("load_manifest")(ref);
      return nb::cast<std::string>(Helper("parsed_manifest_json")(parsed));
    });
    if (!text.ok()) return text.status();
    auto manifest = ManifestFromJson(*text);
    if (!manifest.ok()) return manifest.status().WithContext(fmt::format("manifest '{}'", ref));
    return manifest;
  }

  Result<std::vector<ManifestRef>> ListManifests(int64_t limit) override {
    if (limit < 0) return Status::InvalidArgument(fmt::format("limit must be >= 0 (0 lists all; got {})", limit));
    return Call<std::vector<ManifestRef>>("list_manifests", [&]() -> Result<std::vector<ManifestRef>> {
      nb::object listed = store_.attr("list_manifests")(nb::arg("limit") = limit > 0 ? limit : int64_t{1} << 62);
      std::vector<ManifestRef> refs;
      for (nb::handle item : listed) refs.push_back(ToRef(nb::borrow(item), "list_manifests"));
      return refs;
    });
  }

  Status SetCurrent(const std::string& ref, const std::optional<ManifestRef>& expected) override {
    return Call<bool>("set_current", [&]() -> Result<bool> {
      if (expected) {
        std::optional<ManifestRef> now = RefOrNone(store_.attr("load_current")(), "load_current");
        const std::string now_ref = now ? now->ref : std::string();
        if (now_ref != expected->ref) {
          return Status::Conflict(fmt::format("set_current to '{}': the pointer names '{}', not the expected '{}'",
                                              ref, now_ref, expected->ref));
        }
      }
      store_.attr("set_current")(ref);
      return true;
    }).status();
  }

  std::string Describe() const override {
    nb::gil_scoped_acquire gil;
    try {
      return fmt::format("manifest store {}", nb::cast<std::string>(nb::repr(store_)));
    } catch (const nb::python_error&) {
      return "a Python manifest store";
    }
  }

 private:
  static nb::object Helper(const char* name) {
    return nb::module_::import_("shardvec.manifest_store").attr(name);
  }

  static ManifestRef ToRef(const nb::object& obj, const char* method) {
    auto [ref, run_id, published_at] = nb::cast<RefTuple>(Helper("ref_tuple")(obj, method));
    return ManifestRef{std::move(ref), std::move(run_id), std::move(published_at)};
  }

  static std::optional<ManifestRef> RefOrNone(const nb::object& obj, const char* method) {
    if (obj.is_none()) return std::nullopt;
    return ToRef(obj, method);
  }

  // Runs `body` with the GIL; a Python exception (or a bad return value) comes back as a Status.
  template <typename T, typename F>
  Result<T> Call(const char* method, F&& body) const {
    nb::gil_scoped_acquire gil;
    try {
      return body();
    } catch (nb::python_error& e) {
      return StatusFromPythonError(e, fmt::format("manifest store {}()", method));
    } catch (const nb::cast_error&) {
      return Status::InvalidArgument(
          fmt::format("manifest store {}() returned a value of the wrong type", method));
    } catch (const nb::builtin_exception& e) {
      return Status::InvalidArgument(fmt::format("manifest store {}(): {}", method, e.what()));
    }
  }

  nb::object store_;
};

std::shared_ptr<ManifestStore> FromPython(nb::object store) {
  for (const char* method : {"publish", "load_current", "load_manifest", "list_manifests", "set_current"}) {
    if (!nb::hasattr(store, method)) {
      Raise(Status::InvalidArgument(fmt::format(
          "manifest_store {} has no {}() method: a manifest store implements publish, load_current, "
          "load_manifest, list_manifests and set_current", nb::cast<std::string>(nb::repr(store)), method)));
    }
  }
  return std::make_shared<PythonManifestStore>(std::move(store));
}

RefTuple ToTuple(ManifestRef ref) { return {std::move(ref.ref), std::move(ref.run_id), std::move(ref.published_at)}; }

}  // namespace

void BindManifestStore(nb::module_& m) {
  using NoGil = nb::call_guard<nb::gil_scoped_release>;
  nb::class_<ManifestStore>(m, "ManifestStore",
                            "The engine's manifest store: where manifests and the current pointer live.")
      .def(
          "publish",
          [](ManifestStore& self, const std::string& manifest_json, bool last_writer_wins) {
            Manifest manifest = Unwrap(ManifestFromJson(manifest_json));
            nb::gil_scoped_release release;
            return ToTuple(Unwrap(self.Publish(
                manifest, PublishGuard{NowUtc(), last_writer_wins ? PublishPolicy::kLastWriterWins
                                                                  : PublishPolicy::kRejectIfNewer})));
          },
          nb::arg("manifest_json"), nb::arg("last_writer_wins") = false,
          "Publishes a manifest (shardvec.manifest JSON); returns (ref, run_id, published_at).")
      .def(
          "load_current",
          [](ManifestStore& self) -> std::optional<RefTuple> {
            auto current = Unwrap(self.LoadCurrent());
            if (!current) return std::nullopt;
            return ToTuple(std::move(*current));
          },
          NoGil(), "The current pointer as (ref, run_id, published_at), or None.")
      .def(
          "load_manifest_json",
          [](ManifestStore& self, const std::string& ref) { return ManifestToJson(Unwrap(self.LoadManifest(ref))).dump(); },
          NoGil(), nb::arg("ref"), "The manifest `ref` names, as shardvec.manifest JSON.")
      .def(
          "list_manifests",
          [](ManifestStore& self, int64_t limit) {
            std::vector<RefTuple> out;
            for (ManifestRef& ref : Unwrap(self.ListManifests(limit))) out.push_back(ToTuple(std::move(ref)));
            return out;
          },
          NoGil(), nb::arg("limit"), "Newest first, as (ref, run_id, published_at); limit 0 lists all.")
      .def(
          "set_current",
          [](ManifestStore& self, const std::string& ref, std::optional<std::string> expected) {
            std::optional<ManifestRef> want;
            if (expected) want = ManifestRef{*expected, "", ""};
            Status st = self.SetCurrent(ref, want);
            if (!st.ok()) Raise(st);
          },
          NoGil(), nb::arg("ref"), nb::arg("expected").none() = nb::none(),
          "Points the current pointer at `ref` (with `expected`: only while it still names that ref; '' = none).")
      .def("describe", &ManifestStore::Describe);
  m.def(
      "object_manifest_store",
      [](const std::string& store, const StoreOptions& options, const std::string& current_pointer_key) {
        std::shared_ptr<ObjectStore> objects = Unwrap(OpenStore(store, options));
        return std::shared_ptr<ManifestStore>(
            MakeObjectManifestStore(std::move(objects), ObjectManifestStoreOptions{current_pointer_key}));
      },
      nb::arg("store"), nb::arg("store_options"), nb::arg("current_pointer_key") = "_CURRENT",
      "Manifests and the pointer beside the shards (manifests/… and the pointer key under `store`).");
  m.def("python_manifest_store", &FromPython, nb::arg("store"),
        "The engine's view of a Python object implementing the ManifestStore protocol.");
}

}  // namespace shardvec::py
