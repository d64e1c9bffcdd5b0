// The engine's value types as typed Python classes (shardvec._engine.WriteConfig, RoutingPlan,
// ShardInfo, ...): the Python package fills and reads these instead of string-keyed dicts. Plans,
// shard tasks, shard infos and store options pickle, so a driver can ship them to Spark, Dask and Ray
// workers.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>

#include "engine_common.h"
#include "shardvec/manifest_store.h"
#include "shardvec/reader.h"
#include "struct_binding.h"

namespace shardvec::py {
namespace {

using FloatArray = nb::ndarray<nb::numpy, float, nb::ndim<2>>;

// A copy of `m` as a NumPy array (None when absent); the engine's copy stays its own.
nb::object MatrixToNumpy(const std::optional<Matrix>& m) {
  if (!m) return nb::none();
  auto* data = new std::vector<float>(m->data);
  nb::capsule owner(data, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
  return nb::cast(FloatArray(data->data(), {static_cast<size_t>(m->rows), static_cast<size_t>(m->cols)}, owner));
}

std::optional<Matrix> MatrixFromPython(const std::optional<FloatMatrix>& m) {
  if (!m) return std::nullopt;
  return CopyMatrix(*m);
}

// A matrix member (centroids, hyperplanes) read and written as a float32 (rows, cols) NumPy array.
template <typename T>
auto MatrixGetter(std::optional<Matrix> T::*member) {
  return [member](const T& self) { return MatrixToNumpy(self.*member); };
}
template <typename T>
auto MatrixSetter(std::optional<Matrix> T::*member) {
  return [member](T& self, std::optional<FloatMatrix> m) { self.*member = MatrixFromPython(m); };
}

nb::object RoutingValuesToPython(const std::optional<std::vector<RoutingValue>>& tokens) {
  if (!tokens) return nb::none();
  nb::list out;
  for (const RoutingValue& v : *tokens) out.append(RoutingValueToPython(v));
  return out;
}

std::optional<std::vector<RoutingValue>> RoutingValuesFromPython(const std::optional<nb::sequence>& values,
                                                                 std::string_view field) {
  if (!values) return std::nullopt;
  std::vector<RoutingValue> tokens;
  for (nb::handle token : *values) {
    tokens.push_back(RoutingValueFromPython(token, std::string(field) + "[" + std::to_string(tokens.size()) + "]"));
  }
  return tokens;
}

// routing_values (categorical CEL tokens) as a list of int / str / bytes, or None.
template <typename T>
auto TokensGetter(std::optional<std::vector<RoutingValue>> T::*member) {
  return [member](const T& self) { return RoutingValuesToPython(self.*member); };
}
template <typename T>
auto TokensSetter(std::optional<std::vector<RoutingValue>> T::*member, const char* field) {
  return [member, field](T& self, std::optional<nb::sequence> values) {
    self.*member = RoutingValuesFromPython(values, field);
  };
}

// A metrics sink (an object with emit(event, payload), or the engine's PrometheusCollector).
template <typename T>
void BindMetricsField(StructBinding<T>& s) {
  s.property(
      "metrics", [](const T& self) { return SinkToPython(self.metrics); },
      [](T& self, std::optional<nb::object> collector) {
        self.metrics = collector ? SinkFromPython(*collector) : nullptr;
      },
      "Receives the metric events: None, a PrometheusCollector or any object with emit(event, payload).");
}

// Where manifests and the pointer live: None (beside the shards) or a shardvec._engine.ManifestStore.
template <typename T>
void BindManifestStoreField(StructBinding<T>& s) {
  s.property(
      "manifest_store", [](const T& self) { return self.manifest_store; },
      [](T& self, std::optional<nb::object> store) {
        self.manifest_store = store && !store->is_none() ? nb::cast<std::shared_ptr<ManifestStore>>(*store) : nullptr;
      },
      "None: the manifests and the pointer beside the shards; else a shardvec._engine.ManifestStore.");
}

void BindEnums(nb::module_& m) {
  nb::enum_<Metric>(m, "Metric", "Distance metric (sqlite-vec's cosine or l2).")
      .value("COSINE", Metric::kCosine)
      .value("L2", Metric::kL2);
  nb::enum_<Strategy>(m, "Strategy", "How rows map to shards.")
      .value("CLUSTER", Strategy::kCluster)
      .value("LSH", Strategy::kLsh)
      .value("EXPLICIT", Strategy::kExplicit)
      .value("CEL", Strategy::kCel);
  nb::enum_<ReaderMode>(m, "ReaderMode", "How a reader reaches a shard's bytes.")
      .value("DOWNLOAD", ReaderMode::kDownload)
      .value("RANGE", ReaderMode::kRange)
      .value("AUTO", ReaderMode::kAuto);
  nb::enum_<PublishPolicy>(m, "PublishPolicy", "What publish does when _CURRENT moved on meanwhile.")
      .value("REJECT_IF_NEWER", PublishPolicy::kRejectIfNewer)
      .value("LAST_WRITER_WINS", PublishPolicy::kLastWriterWins);
}

void BindStoreOptions(nb::module_& m) {
  StructBinding<StoreOptions>(m, "StoreOptions", "How to reach an s3:// store (unused for folders).")
      .field("endpoint_url", &StoreOptions::endpoint_url, "e.g. http://127.0.0.1:9000")
      .field("region", &StoreOptions::region, "")
      .field("profile", &StoreOptions::profile, "")
      .field("addressing_style", &StoreOptions::addressing_style, "auto | path | virtual")
      .field("access_key_id", &StoreOptions::access_key_id, "")
      .secret("secret_access_key", &StoreOptions::secret_access_key, "")
      .secret("session_token", &StoreOptions::session_token, "")
      .field("max_attempts", &StoreOptions::max_attempts, "per request, first try included")
      .field("max_retry_seconds", &StoreOptions::max_retry_seconds, "total time a request may spend retrying")
      .field("connect_timeout_seconds", &StoreOptions::connect_timeout_seconds, "")
      .field("request_timeout_seconds", &StoreOptions::request_timeout_seconds, "per attempt")
      .field("multipart_threshold_bytes", &StoreOptions::multipart_threshold_bytes, "")
      .field("part_size_bytes", &StoreOptions::part_size_bytes, "")
      .field("ranged_get_threshold_bytes", &StoreOptions::ranged_get_threshold_bytes, "")
      .field("max_concurrency", &StoreOptions::max_concurrency, "parallel parts / ranges per object")
      .field("ca_bundle", &StoreOptions::ca_bundle, "a PEM CA bundle path")
      .field("verify_tls", &StoreOptions::verify_tls, "False accepts any certificate")
      .finish(/*picklable=*/true);
}

void BindWriteConfig(nb::module_& m) {
  StructBinding<IndexConfig>(m, "IndexConfig", "The per-shard index.")
      .field("dim", &IndexConfig::dim, "")
      .field("metric", &IndexConfig::metric, "")
      .field("index_type", &IndexConfig::index_type, "'hnsw' or 'flat' (recorded in the manifest)")
      .field("quantization", &IndexConfig::quantization, "None ('none'), 'none' or 'int8'")
      .finish(/*picklable=*/false);
  StructBinding<ShardingConfig>(m, "ShardingConfig", "How rows map to shards (checked when the write starts).")
      .field("num_dbs", &ShardingConfig::num_dbs, "")
      .field("strategy", &ShardingConfig::strategy, "")
      .field("num_probes", &ShardingConfig::num_probes, "")
      .field("sublists_per_shard", &ShardingConfig::sublists_per_shard, "0 = auto (about sqrt(rows)), 1 = none")
      .property("centroids", MatrixGetter(&ShardingConfig::centroids), MatrixSetter(&ShardingConfig::centroids),
                "CLUSTER: (num_dbs, dim) float32, or None")
      .field("train_centroids", &ShardingConfig::train_centroids, "")
      .field("centroids_training_sample_size", &ShardingConfig::centroids_training_sample_size, "")
      .field("num_hash_bits", &ShardingConfig::num_hash_bits, "")
      .property("hyperplanes", MatrixGetter(&ShardingConfig::hyperplanes),
                MatrixSetter(&ShardingConfig::hyperplanes), "LSH: (num_hash_bits, dim) float32, or None")
      .field("cel_expr", &ShardingConfig::cel_expr, "")
      .field("cel_columns", &ShardingConfig::cel_columns, "")
      .property("routing_values", TokensGetter(&ShardingConfig::routing_values),
                TokensSetter(&ShardingConfig::routing_values, "sharding.routing_values"),
                "CEL categorical tokens (int, str or bytes), or None")
      .finish(/*picklable=*/false);
  StructBinding<WriteConfig> config(m, "WriteConfig", "Everything a write needs except the records.");
  config.field("store", &WriteConfig::store, "a folder, file:///abs/path or s3://bucket/prefix")
      .field("store_options", &WriteConfig::store_options, "")
      .field("index", &WriteConfig::index, "")
      .field("sharding", &WriteConfig::sharding, "")
      .field("run_id", &WriteConfig::run_id, "generated when None")
      .field("local_root", &WriteConfig::local_root, "empty: this user's default build folder")
      .field("shard_prefix", &WriteConfig::shard_prefix, "")
      .field("db_path_template", &WriteConfig::db_path_template, "")
      .field("run_registry_prefix", &WriteConfig::run_registry_prefix, "")
      .field("batch_size", &WriteConfig::batch_size, "")
      .field("max_parallel_shards", &WriteConfig::max_parallel_shards, "0: one per usable CPU")
      .field("publish_policy", &WriteConfig::publish_policy, "")
      .field("allow_schema_change", &WriteConfig::allow_schema_change, "publish over a current snapshot of another dim/metric")
      .field("filter_columns", &WriteConfig::filter_columns,
             "payload keys stored typed in every shard: name -> string, int, double, bool or list<string>")
      .field("custom_manifest_fields_json", &WriteConfig::custom_manifest_fields_json,
             "extra manifest fields, each value JSON text");
  BindManifestStoreField(config);
  BindMetricsField(config);
  config.finish(/*picklable=*/false);
  m.def(
      "validate_layout",
      [](const std::string& shard_prefix, const std::string& db_path_template, const std::string& run_registry_prefix,
         const std::string& field_prefix) {
        const std::string names[] = {field_prefix + "shard_prefix", field_prefix + "db_path_template",
                                     field_prefix + "run_registry_prefix"};
        const Status st = ValidateLayout(shard_prefix, db_path_template, run_registry_prefix, {names[0], names[1], names[2]});
        if (!st.ok()) Raise(st);
      },
      nb::arg("shard_prefix"), nb::arg("db_path_template"), nb::arg("run_registry_prefix"),
      nb::arg("field_prefix") = "output.",
      "Refuses (ConfigValidationError naming the field) a layout the engine cannot write exactly as given.");
  m.def(
      "validate_filter_columns",
      [](const std::map<std::string, std::string>& columns, const std::string& field) {
        const Status st = ValidateFilterColumns(columns, field);
        if (!st.ok()) Raise(st);
      },
      nb::arg("columns"), nb::arg("field") = "filter_columns",
      "Refuses (ConfigValidationError naming the field and the value) filter columns the engine cannot store: "
      "a name that is not a CEL identifier, a type other than string, int, double, bool, list<string>.");
}

void BindReaderOptions(nb::module_& m) {
  StructBinding<ReaderOptions> options(m, "ReaderOptions", "How a reader opens a store.");
  options.field("store", &ReaderOptions::store, "")
      .field("store_options", &ReaderOptions::store_options, "")
      .field("cache_dir", &ReaderOptions::cache_dir, "empty: this user's default shard cache")
      .field("max_workers", &ReaderOptions::max_workers, "0: one per usable CPU")
      .field("max_fallback_attempts", &ReaderOptions::max_fallback_attempts, "")
      .field("max_cached_shards", &ReaderOptions::max_cached_shards, "0: unbounded")
      .field("max_cache_bytes", &ReaderOptions::max_cache_bytes, "download tier: the cache folder's byte budget")
      .field("preload_shards", &ReaderOptions::preload_shards, "")
      .field("reader_mode", &ReaderOptions::reader_mode, "DOWNLOAD, RANGE or AUTO")
      .field("page_cache_pages", &ReaderOptions::page_cache_pages, "range tier: pages cached per shard")
      .field("auto_per_shard_threshold_bytes", &ReaderOptions::auto_per_shard_threshold_bytes, "")
      .field("auto_total_budget_bytes", &ReaderOptions::auto_total_budget_bytes, "")
      .field("mmap_size", &ReaderOptions::mmap_size, "download tier: None maps the whole shard")
      .field("shard_store_options", &ReaderOptions::shard_store_options, "None: store_options")
      .field("filter_cache_bytes", &ReaderOptions::filter_cache_bytes,
             "filtered searches: bytes of passing-row bitmaps kept (>= 0; 0 keeps none)")
      .property(
          "manifest_ref",
          [](const ReaderOptions& o) -> std::optional<std::string> { return o.manifest ? o.manifest->ref : std::nullopt; },
          [](ReaderOptions& o, std::optional<std::string> ref) {
            if (ref) {
              o.manifest = RollbackTarget{.ref = std::move(ref)};
            } else {
              o.manifest.reset();
            }
          },
          "None: the manifest _CURRENT names (refresh() follows it); a manifest URL or key: that one, for good");
  BindManifestStoreField(options);
  BindMetricsField(options);
  options.finish(/*picklable=*/false);
}

void BindDistributedTypes(nb::module_& m) {
  StructBinding<RoutingPlan>(m, "RoutingPlan",
                             "Resolved routing, shipped from the driver to every worker (picklable).")
      .field("strategy", &RoutingPlan::strategy, "")
      .field("metric", &RoutingPlan::metric, "")
      .field("dim", &RoutingPlan::dim, "")
      .field("num_dbs", &RoutingPlan::num_dbs, "")
      .field("num_probes", &RoutingPlan::num_probes, "")
      .field("num_hash_bits", &RoutingPlan::num_hash_bits, "")
      .property("centroids", MatrixGetter(&RoutingPlan::centroids), MatrixSetter(&RoutingPlan::centroids), "")
      .property("hyperplanes", MatrixGetter(&RoutingPlan::hyperplanes), MatrixSetter(&RoutingPlan::hyperplanes), "")
      .field("cel_expr", &RoutingPlan::cel_expr, "")
      .field("cel_columns", &RoutingPlan::cel_columns, "")
      .property("routing_values", TokensGetter(&RoutingPlan::routing_values),
                TokensSetter(&RoutingPlan::routing_values, "plan.routing_values"), "")
      .finish(/*picklable=*/true);
  StructBinding<ShardTask>(m, "ShardTask", "One worker's shard build (picklable).")
      .field("store", &ShardTask::store, "")
      .field("store_options", &ShardTask::store_options, "")
      .field("local_root", &ShardTask::local_root, "")
      .field("run_id", &ShardTask::run_id, "")
      .field("db_id", &ShardTask::db_id, "")
      .field("dim", &ShardTask::dim, "")
      .field("metric", &ShardTask::metric, "")
      .field("quantization", &ShardTask::quantization, "")
      .field("sublists_per_shard", &ShardTask::sublists_per_shard, "")
      .field("filter_columns", &ShardTask::filter_columns, "")
      .field("first_attempt", &ShardTask::first_attempt, "")
      .field("shard_prefix", &ShardTask::shard_prefix, "")
      .field("db_path_template", &ShardTask::db_path_template, "")
      .finish(/*picklable=*/true);
  StructBinding<ShardInfo>(m, "ShardInfo", "One built shard attempt, as the manifest lists it (picklable).")
      .field("db_id", &ShardInfo::db_id, "")
      .field("db_url", &ShardInfo::db_url, "")
      .field("attempt", &ShardInfo::attempt, "")
      .field("row_count", &ShardInfo::row_count, "")
      .field("db_bytes", &ShardInfo::db_bytes, "")
      .field("checkpoint_id", &ShardInfo::checkpoint_id, "")
      .field("digest", &ShardInfo::digest, "xxh3:<16 hex>")
      .field("id_type", &ShardInfo::id_type, "int, str or mixed; empty for an empty shard")
      .field("sublists", &ShardInfo::sublists, "the sub-lists the shard was split into (0: none)")
      .field("filter_stats", &ShardInfo::filter_stats, "the filter columns' statistics as JSON text; empty without")
      .finish(/*picklable=*/true);
  StructBinding<BuildDurations>(m, "BuildDurations", "Where a build's time went, in milliseconds.")
      .field("sharding_ms", &BuildDurations::sharding_ms, "routing plan and (WriteSharded) routing every record")
      .field("write_ms", &BuildDurations::write_ms, "building and uploading the shards")
      .field("manifest_ms", &BuildDurations::manifest_ms, "manifest and _CURRENT")
      .field("total_ms", &BuildDurations::total_ms, "the whole call")
      .finish(/*picklable=*/false);
  StructBinding<BuildResult>(m, "BuildResult", "What a published write reports.")
      .field("run_id", &BuildResult::run_id, "")
      .field("manifest_ref", &BuildResult::manifest_ref, "")
      .field("num_dbs", &BuildResult::num_dbs, "")
      .field("total_vectors", &BuildResult::total_vectors, "")
      .field("elapsed_ms", &BuildResult::elapsed_ms, "")
      .field("shards", &BuildResult::shards, "non-empty shards, ascending db_id")
      .field("durations", &BuildResult::durations, "")
      .field("num_attempt_results", &BuildResult::num_attempt_results, "shard attempts built or reported")
      .finish(/*picklable=*/false);
}

void BindReaderTypes(nb::module_& m) {
  StructBinding<ReadStats>(m, "ReadStats", "What reading shards has cost a reader so far.")
      .field("reader_mode", &ReadStats::reader_mode, "")
      .field("range_bytes_fetched", &ReadStats::range_bytes_fetched, "")
      .field("range_requests", &ReadStats::range_requests, "")
      .field("shards_downloaded", &ReadStats::shards_downloaded, "")
      .field("bytes_downloaded", &ReadStats::bytes_downloaded, "")
      .field("filter_bitmaps_evaluated", &ReadStats::filter_bitmaps_evaluated, "")
      .field("filter_bitmaps_reused", &ReadStats::filter_bitmaps_reused, "")
      .finish(/*picklable=*/false);
  StructBinding<SnapshotInfo>(m, "SnapshotInfo", "The snapshot a reader is pinned to.")
      .field("run_id", &SnapshotInfo::run_id, "")
      .field("num_dbs", &SnapshotInfo::num_dbs, "")
      .field("dim", &SnapshotInfo::dim, "")
      .field("metric", &SnapshotInfo::metric, "")
      .field("strategy", &SnapshotInfo::strategy, "")
      .field("num_probes", &SnapshotInfo::num_probes, "")
      .field("manifest_ref", &SnapshotInfo::manifest_ref, "")
      .field("total_vectors", &SnapshotInfo::total_vectors, "")
      .field("created_at", &SnapshotInfo::created_at, "")
      .field("published_at", &SnapshotInfo::published_at, "")
      .field("cel_expr", &SnapshotInfo::cel_expr, "")
      .field("cel_columns", &SnapshotInfo::cel_columns, "")
      .property("routing_values", TokensGetter(&SnapshotInfo::routing_values),
                TokensSetter(&SnapshotInfo::routing_values, "routing_values"), "")
      .finish(/*picklable=*/false);
  StructBinding<ShardDetail>(m, "ShardDetail", "One shard of the pinned snapshot.")
      .field("db_id", &ShardDetail::db_id, "")
      .field("db_url", &ShardDetail::db_url, "None for an empty shard")
      .field("vector_count", &ShardDetail::vector_count, "")
      .field("db_bytes", &ShardDetail::db_bytes, "")
      .field("checkpoint_id", &ShardDetail::checkpoint_id, "")
      .field("digest", &ShardDetail::digest, "")
      .finish(/*picklable=*/false);
  StructBinding<ReaderHealth>(m, "ReaderHealth", "A reader's health.")
      .field("status", &ReaderHealth::status, "healthy | degraded | unhealthy")
      .field("manifest_ref", &ReaderHealth::manifest_ref, "")
      .field("manifest_age_seconds", &ReaderHealth::manifest_age_seconds, "")
      .field("num_shards", &ReaderHealth::num_shards, "")
      .field("is_closed", &ReaderHealth::is_closed, "")
      .finish(/*picklable=*/false);
}

}  // namespace

void BindConfigTypes(nb::module_& m) {
  BindEnums(m);
  BindStoreOptions(m);
  BindWriteConfig(m);
  BindReaderOptions(m);
  BindDistributedTypes(m);
  BindReaderTypes(m);
}

}  // namespace shardvec::py
