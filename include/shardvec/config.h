// Write-side configuration, mirroring the reference's VectorIndexConfig / VectorShardingConfig /
// VectorShardedWriteConfig (docs/architecture.md#write-configuration). Validate() reports the first rule broken, naming the
// field and the value.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/metrics.h"
#include "shardvec/object_store.h"
#include "shardvec/rate_limit.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

struct IndexConfig {
  int64_t dim = 0;
  Metric metric = Metric::kCosine;
  std::string index_type = "hnsw";          // recorded in the manifest only
  // "int8": each shard also stores int8 codes of its rows (extra shardvec_sq8_* tables other
  // readers ignore), which our reader scans first and rescores with the float32 rows (same scores);
  // "none": float32 only. Unset: kDefaultQuantization. Recorded in the manifest as configured
  // (custom["vector"]) and as built (custom["shardvec"]["quantization"]); anything else is refused.
  std::optional<std::string> quantization;
};

inline constexpr std::string_view kDefaultQuantization = "none";
// The refusal of filter column declarations (WriteConfig::filter_columns), naming `field` and the
// value: more than 64 columns, a name that is not a CEL identifier (letters, digits and '_', not
// starting with a digit, not a CEL keyword, at most 64 bytes), or a type other than "string", "int",
// "double", "bool" and "list<string>".
Status ValidateFilterColumns(const std::map<std::string, std::string>& filter_columns, std::string_view field);

// Whether shards built under `quantization` (an IndexConfig::quantization) carry int8 codes.
inline bool WritesInt8Codes(const std::optional<std::string>& quantization) {
  return quantization.value_or(std::string(kDefaultQuantization)) == "int8";
}
// The refusal of a quantization other than unset, "none" or "int8", naming `field` and the value.
Status ValidateQuantization(const std::optional<std::string>& quantization, std::string_view field);

struct ShardingConfig {
  // Shard count; inferred from the centroid count for CLUSTER with given centroids.
  std::optional<int64_t> num_dbs;
  Strategy strategy = Strategy::kCluster;
  // Default read-time probe count; must be 1 for EXPLICIT and CEL.
  int64_t num_probes = 1;
  // Sub-lists inside each shard (rows clustered at build time; a reader scans only the nearest):
  // 0 = auto (about sqrt(rows) per shard, none below 256 rows), 1 = none, n = at most n per shard
  // (fewer where a shard has fewer rows or a cluster comes out empty). 0..65536.
  int64_t sublists_per_shard = 0;

  // CLUSTER: given centroids (num_dbs x dim), or k-means trained on a sample of the input.
  std::optional<Matrix> centroids;
  bool train_centroids = false;
  int64_t centroids_training_sample_size = 100000;

  // LSH: bit count (default 8, or the given hyperplanes' row count) and optional hyperplanes.
  std::optional<int64_t> num_hash_bits;
  std::optional<Matrix> hyperplanes;

  // CEL: an expression over each record's routing_context and its variables' types ("int", "uint",
  // "double", "string", "bytes", "bool"). With routing_values (categorical) the result's index in
  // that list is the shard and num_dbs defaults to its size; otherwise the int result is the shard.
  std::optional<std::string> cel_expr;
  std::map<std::string, std::string> cel_columns;
  std::optional<std::vector<RoutingValue>> routing_values;
};

// What publish does when _CURRENT moved to a newer manifest while this run was building.
enum class PublishPolicy {
  kRejectIfNewer,    // fail with a Conflict (PublishConflictError); the manifest stays in history
  kLastWriterWins,   // the reference's behaviour: overwrite the pointer anyway
};

struct WriteProgress {
  std::string phase;  // "sample", "train", "route", "build", "publish"
  int64_t done = 0;   // "train": the k-means iteration just run (1-based)
  int64_t total = 0;  // 0 when unknown
  // "train": the k-means inertia after iteration `done` (sum of the sample's squared L2 distances to
  // their nearest centroid); nullopt in the other phases.
  std::optional<double> inertia = std::nullopt;
};

class ManifestStore;  // shardvec/manifest_store.h

struct WriteConfig {
  // Store prefix: a local folder path, file:///abs/path or s3://bucket/prefix.
  std::string store;
  // How to reach an s3:// store (endpoint, region, credentials, retries); unused for folders.
  StoreOptions store_options;
  IndexConfig index;
  ShardingConfig sharding;
  // Generated (uuid4 hex) when absent. Letters, digits, '.', '_' and '-' only.
  std::optional<std::string> run_id;
  // Parent of the run-scoped build directories; empty = this user's $XDG_CACHE_HOME/shardvec/build
  // (or ~/.cache/shardvec/build). Created 0700; refused unless owned by this user and not writable
  // by group or others. Folders of killed builds in it are reclaimed by the next build.
  std::string local_root;
  // Object layout (the reference's output settings): shards go to
  // <shard_prefix>/run_id=<run>/<db_path_template.format(db_id)>/attempt=NN/shard.db and run records
  // to <run_registry_prefix>/<timestamp>_run_id=<run>_<uuid>/run.yaml. The manifest records the first
  // two, so readers find the shards whatever they are. shard_prefix and run_registry_prefix are single
  // segments of [A-Za-z0-9._-]; db_path_template is Python format text over {db_id} (e.g.
  // "shard-{db_id:03d}") that formats to one segment of [A-Za-z0-9._=-]. Anything else is refused.
  std::string shard_prefix = "shards";
  std::string db_path_template = "db={db_id:05d}";
  std::string run_registry_prefix = "runs";
  // Rows per write batch of a shard: the unit write_rate_limiter counts.
  int64_t batch_size = 10000;
  // Takes one token before each batch_size rows added to a shard (a shard of n rows takes
  // ceil(n / batch_size)); shards built at once share it. None when null. An error it returns fails
  // the write.
  std::shared_ptr<RateLimiter> write_rate_limiter;
  // Shards built at once, 0..1024; 0 means one per usable CPU, plus one to use the cores while a
  // finished shard waits for its fsync or upload. A thread the system refuses is an error.
  int64_t max_parallel_shards = 0;
  PublishPolicy publish_policy = PublishPolicy::kRejectIfNewer;
  // A snapshot whose dim or metric differs from the current snapshot's is refused at publish
  // (Conflict, ErrorKind::kPublishConflict, naming both values; no manifest written): live readers
  // could not search it. True publishes it anyway (those readers then refuse to refresh onto it).
  bool allow_schema_change = false;
  // Where the manifest is published and the current pointer moved; null: the object-store layout
  // beside the shards (manifests/… and _CURRENT under `store`).
  std::shared_ptr<ManifestStore> manifest_store;
  // Filter columns, name -> type ("string", "int" (signed 64-bit), "double", "bool", "list<string>"):
  // each record's payload key of that name, stored typed and columnar in every shard (an extra
  // shardvec_filter_columns table other readers ignore), with per-shard statistics in the manifest
  // (custom["shardvec"]["filter_columns"] and ["filter_stats"]). A missing key or JSON null is null;
  // a value of another type fails the write naming the record, the column and the value. Names are
  // CEL identifiers (ValidateFilterColumns).
  std::map<std::string, std::string> filter_columns;
  // Extra JSON values merged into the manifest's custom block ("vector" and "shardvec" are ours).
  std::map<std::string, std::string> custom_manifest_fields_json;
  // Called from the writing thread as work advances.
  std::function<void(const WriteProgress&)> on_progress;
  // Receives the vector.write.* metric events (include/shardvec/metrics.h); none when null.
  std::shared_ptr<MetricsSink> metrics;
  // The sqlite-vec 0.1.9 loadable extension (vec0.so). Empty: the SHARDVEC_VEC0_PATH environment
  // variable, else the Python package's sqlite-vec wheel (under Python), else the path the library
  // was configured with. A file that does not exist is refused naming vec0_path; vec0 loads once per
  // process, so a path other than the one already loaded is refused too.
  std::string vec0_path;
};

// What a front end calls each layout field in its errors: the API's names by default, the CLI's flags
// in the CLI.
struct LayoutFieldNames {
  std::string_view shard_prefix = "shard_prefix";
  std::string_view db_path_template = "db_path_template";
  std::string_view run_registry_prefix = "run_registry_prefix";
};

// The layout rules of WriteConfig's shard_prefix, db_path_template and run_registry_prefix (Validate
// applies them): InvalidArgument naming the field and the value. A db_path_template is literal text
// with at least one {db_id} or {db_id:SPEC} field ({{ and }} stand for braces), SPEC being Python's
// integer format spec [[fill]align][sign][#][0][width][type] with type d, x, X, o or b and a width
// below 100 (no ',' or '_' grouping, no '#' with o, no '0' beside an alignment: what formats the
// same in Python and here), formatting to one segment of [A-Za-z0-9._=-] other than "." and "..".
Status ValidateLayout(std::string_view shard_prefix, std::string_view db_path_template,
                      std::string_view run_registry_prefix, const LayoutFieldNames& names = {});

// Checks every field rule that does not need the data. num_dbs may still be unknown afterwards only
// for CLUSTER with given centroids (then it is the centroid count).
Status Validate(const WriteConfig& config);

// What a front end calls each sharding field in its errors: the API's names by default, the CLI's
// flags in the CLI.
struct ShardingFieldNames {
  std::string_view num_dbs = "num_dbs";
  std::string_view num_probes = "num_probes";
  std::string_view centroids = "centroids";
  std::string_view train_centroids = "train_centroids";
  std::string_view sample_size = "centroids_training_sample_size";
  std::string_view num_hash_bits = "num_hash_bits";
  std::string_view hyperplanes = "hyperplanes";
  std::string_view cel_expr = "cel_expr";
  std::string_view cel_columns = "cel_columns";
  std::string_view routing_values = "routing_values";
  std::string_view sublists_per_shard = "sublists_per_shard";
};

// Every sharding field set to other than its default must take effect. Refuses, naming the field
// and the value: a field the strategy does not use (centroids or train_centroids outside CLUSTER,
// the two together, a sample size other than the default without training, num_hash_bits other
// than the default or hyperplanes outside LSH, the CEL fields outside CEL); num_probes above the
// shards the routing can probe (num_dbs, the centroid count, and 1 + the hash bits for LSH); and an
// LSH num_dbs above the 2^bits codes the hash reaches. Validate() runs it with the default names.
Status CheckShardingFieldsTakeEffect(const ShardingConfig& s, const ShardingFieldNames& names = {});

}  // namespace shardvec
