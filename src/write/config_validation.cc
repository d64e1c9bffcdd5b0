// Validate(WriteConfig): the rules of docs/architecture.md#write-configuration that need no data, with our stricter
// extras (dimension bounds, finite artifacts, safe run ids). Each error names the field and the value.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include "common/status_macros.h"
#include "common/text_util.h"
#include "common/thread_pool.h"
#include "routing/cel_routing.h"
#include "routing/lsh.h"
#include "shard/filter_columns.h"
#include "shard/sublists.h"
#include "shardvec/config.h"
#include "shardvec/limits.h"
#include "write/config_validation.h"

namespace shardvec {
namespace {

constexpr int64_t kMaxDim = 8192;  // sqlite-vec's limit for float[] columns
constexpr int64_t kMaxHashBits = 62;

Status Invalid(std::string msg) { return Status::InvalidArgument(std::move(msg)); }

// Shards per snapshot, however they are given: num_dbs, centroids rows or routing_values.
Status CheckShardCount(int64_t count, std::string_view what) {
  if (count > kMaxNumDbs) return Invalid(fmt::format("{} must be <= {}, got {}", what, kMaxNumDbs, count));
  return Status::OK();
}

Status ValidateCluster(const ShardingConfig& s, int64_t dim) {
  if (s.train_centroids) {
    if (!s.num_dbs) return Invalid("num_dbs must be provided for CLUSTER sharding with train_centroids");
    if (s.centroids_training_sample_size <= 0) {
      return Invalid(fmt::format("centroids_training_sample_size must be > 0 (got {})",
                                 s.centroids_training_sample_size));
    }
    return Status::OK();
  }
  if (!s.centroids) return Invalid("CLUSTER sharding requires either centroids or train_centroids=True");
  Status st = CheckMatrix(*s.centroids, "centroids", dim);
  if (st.ok()) st = CheckShardCount(s.centroids->rows, "centroids count (num_dbs)");
  if (!st.ok()) return st;
  if (s.num_dbs && *s.num_dbs != s.centroids->rows) {
    return Invalid(fmt::format("centroids count ({}) != num_dbs ({})", s.centroids->rows, *s.num_dbs));
  }
  return Status::OK();
}

Status ValidateLsh(const ShardingConfig& s, int64_t dim) {
  if (!s.num_dbs) return Invalid("num_dbs must be provided for LSH sharding");
  if (s.num_hash_bits && (*s.num_hash_bits < 1 || *s.num_hash_bits > kMaxHashBits)) {
    return Invalid(fmt::format("num_hash_bits must be in 1..{} (got {})", kMaxHashBits, *s.num_hash_bits));
  }
  if (s.hyperplanes) {
    Status st = CheckMatrix(*s.hyperplanes, "hyperplanes", dim);
    if (!st.ok()) return st;
    if (s.hyperplanes->rows > kMaxHashBits) {
      return Invalid(fmt::format("hyperplanes has {} rows; at most {} hash bits are supported",
                                 s.hyperplanes->rows, kMaxHashBits));
    }
    if (s.num_hash_bits && *s.num_hash_bits != s.hyperplanes->rows) {
      return Invalid(fmt::format("num_hash_bits ({}) != hyperplanes rows ({})", *s.num_hash_bits,
                                 s.hyperplanes->rows));
    }
  }
  return Status::OK();
}

// The CEL fields, then the expression compiled and checked against the tokens as a writer would.
Status ValidateCel(const ShardingConfig& s) {
  if (!s.cel_expr || s.cel_expr->empty()) return Invalid("CEL sharding requires cel_expr to be set");
  if (s.cel_columns.empty()) return Invalid("CEL sharding requires cel_columns to be set");
  int64_t num_dbs = 0;
  if (s.routing_values) {
    if (s.routing_values->empty()) return Invalid("routing_values must not be empty (got [])");
    const auto count = static_cast<int64_t>(s.routing_values->size());
    RETURN_IF_ERROR(CheckShardCount(count, "len(routing_values) (num_dbs)"));
    if (s.num_dbs && *s.num_dbs != count) {
      return Invalid(fmt::format("num_dbs ({}) != len(routing_values) ({})", *s.num_dbs, count));
    }
    num_dbs = count;
  } else if (!s.num_dbs) {
    return Invalid("num_dbs must be provided (or inferred from centroids for CLUSTER or routing_values for CEL)");
  } else {
    num_dbs = *s.num_dbs;
  }
  return CelRouting::Make(*s.cel_expr, s.cel_columns, s.routing_values, num_dbs, /*reject_duplicate_tokens=*/true)
      .status();
}

// Every text of the config that goes into a manifest, a run record or a message is UTF-8 (JSON text
// is UTF-8; nlohmann's dump throws on anything else). Errors name the field.
Status ValidateTexts(const WriteConfig& c) {
  Status st = CheckUtf8(c.store, "store");
  if (st.ok()) st = CheckUtf8(c.local_root, "local_root");
  const ShardingConfig& s = c.sharding;
  if (st.ok() && s.cel_expr) st = CheckUtf8(*s.cel_expr, "cel_expr");
  for (const auto& [name, type] : s.cel_columns) {
    if (st.ok()) st = CheckUtf8(name, "cel_columns name");
    if (st.ok()) st = CheckUtf8(type, fmt::format("cel_columns['{}']", EscapeForDisplay(name)));
  }
  if (st.ok() && s.routing_values) {
    for (size_t i = 0; i < s.routing_values->size() && st.ok(); ++i) {
      if (const auto* text = std::get_if<std::string>(&(*s.routing_values)[i])) {
        st = CheckUtf8(*text, fmt::format("routing_values[{}]", i));
      }
    }
  }
  for (const auto& [key, value] : c.custom_manifest_fields_json) {
    if (st.ok()) st = CheckUtf8(key, "custom manifest field name");
    if (st.ok()) st = CheckUtf8(value, fmt::format("custom manifest field '{}'", EscapeForDisplay(key)));
  }
  return st;
}

// index_type values the engine builds: an exhaustive (exact) float32 scan, which is what "flat" names;
// "hnsw" is the reference's default and is recorded as given.
constexpr std::string_view kIndexTypes[] = {"hnsw", "flat"};

Status ValidateIndex(const IndexConfig& index) {
  if (std::find(std::begin(kIndexTypes), std::end(kIndexTypes), index.index_type) == std::end(kIndexTypes)) {
    return Invalid(fmt::format(
        "index_config.index_type '{}' is not supported: sqlite-vec shards are searched exhaustively; use 'flat' "
        "or the default 'hnsw' (both are recorded in the manifest only)",
        index.index_type));
  }
  return ValidateQuantization(index.quantization, "index_config.quantization");
}

}  // namespace

Status CheckShardingFieldsTakeEffect(const ShardingConfig& s, const ShardingFieldNames& n) {
  const std::string strategy(StrategyName(s.strategy));
  const auto only = [&](std::string_view field, std::string_view value, std::string_view applies_to) {
    return Invalid(fmt::format("{}{} applies to {} sharding only (strategy is {})", field,
                               value.empty() ? "" : fmt::format(" {}", value), applies_to, strategy));
  };
  const bool cluster = s.strategy == Strategy::kCluster, lsh = s.strategy == Strategy::kLsh,
             cel = s.strategy == Strategy::kCel;
  if (s.sublists_per_shard < 0 || s.sublists_per_shard > kMaxSublistsPerShard) {
    return Invalid(fmt::format("{} must be in 0..{} (0 = auto, 1 = none; got {})", n.sublists_per_shard,
                               kMaxSublistsPerShard, s.sublists_per_shard));
  }
  if (!cluster && s.centroids) return only(n.centroids, "", "CLUSTER");
  if (!cluster && s.train_centroids) return only(n.train_centroids, "", "CLUSTER");
  if (s.centroids && s.train_centroids) {
    return Invalid(fmt::format("{} and {} exclude each other: training would replace the given centroids",
                               n.centroids, n.train_centroids));
  }
  if (s.centroids_training_sample_size != ShardingConfig{}.centroids_training_sample_size && !s.train_centroids) {
    return Invalid(fmt::format("{} {} applies to CLUSTER sharding with {} only", n.sample_size,
                               s.centroids_training_sample_size, n.train_centroids));
  }
  if (!lsh && s.num_hash_bits && *s.num_hash_bits != kDefaultLshBits) {
    return only(n.num_hash_bits, std::to_string(*s.num_hash_bits), "LSH");
  }
  if (!lsh && s.hyperplanes) return only(n.hyperplanes, "", "LSH");
  if (!cel && s.cel_expr) return only(n.cel_expr, "", "CEL");
  if (!cel && !s.cel_columns.empty()) return only(n.cel_columns, "", "CEL");
  if (!cel && s.routing_values) return only(n.routing_values, "", "CEL");

  // The counts below are compared only when valid: Validate() names an invalid one itself.
  std::optional<int64_t> num_dbs = s.num_dbs;
  if (cluster && s.centroids) num_dbs = s.centroids->rows;
  if (num_dbs && *num_dbs < 1) num_dbs.reset();
  const int64_t bits = s.hyperplanes ? s.hyperplanes->rows : s.num_hash_bits.value_or(kDefaultLshBits);
  if (lsh && num_dbs && bits >= 1 && bits <= kMaxHashBits) {
    if (*num_dbs > LshReachableShards(bits)) {
      return Invalid(fmt::format(
          "{} {} exceeds the {} shards {} {} can reach (2^bits): the others would stay empty; raise {} or lower {}",
          n.num_dbs, *num_dbs, LshReachableShards(bits), s.hyperplanes ? n.hyperplanes : n.num_hash_bits, bits,
          n.num_hash_bits, n.num_dbs));
    }
    if (s.num_probes > LshMaxProbes(bits, *num_dbs)) {
      return Invalid(fmt::format("{} {} exceeds the {} shards LSH can probe with {} {} and {} {} (1 + bits, at most "
                                 "num_dbs)",
                                 n.num_probes, s.num_probes, LshMaxProbes(bits, *num_dbs),
                                 s.hyperplanes ? n.hyperplanes : n.num_hash_bits, bits, n.num_dbs, *num_dbs));
    }
  }
  if (num_dbs && s.num_probes > *num_dbs) {
    return Invalid(fmt::format("{} {} exceeds {} {}: a query cannot probe more shards than there are",
                               n.num_probes, s.num_probes, n.num_dbs, *num_dbs));
  }
  return Status::OK();
}

Status ValidateRunId(std::string_view run_id) {
  static const std::regex kRunId(R"([A-Za-z0-9._-]{1,128})");
  if (!std::regex_match(run_id.begin(), run_id.end(), kRunId) || run_id == "." || run_id == "..") {
    return Invalid(fmt::format("run_id '{}' must be 1-128 characters of letters, digits, '.', '_' or '-'",
                               EscapeForDisplay(run_id)));
  }
  return Status::OK();
}

Status ValidateQuantization(const std::optional<std::string>& quantization, std::string_view field) {
  if (!quantization || *quantization == "none" || *quantization == "int8") return Status::OK();
  return Invalid(fmt::format(
      "{} '{}' is not supported: use 'int8' (int8 codes beside the float32 vectors, for a faster scan) or "
      "'none' (float32 only; the default when unset)",
      field, *quantization));
}

Status ValidateFilterColumns(const std::map<std::string, std::string>& filter_columns, std::string_view field) {
  return ParseFilterColumnSpecs(filter_columns, field).status();
}

Status ValidateLayout(std::string_view shard_prefix, std::string_view db_path_template,
                      std::string_view run_registry_prefix, const LayoutFieldNames& names) {
  return ValidateKeyLayout(
      KeyLayout{std::string(shard_prefix), std::string(db_path_template), std::string(run_registry_prefix)}, names);
}

KeyLayout LayoutOf(const WriteConfig& c) {
  return KeyLayout{c.shard_prefix, c.db_path_template, c.run_registry_prefix};
}

Status Validate(const WriteConfig& c) {
  if (c.store.empty()) return Invalid("store must not be empty");
  if (Status texts = ValidateTexts(c); !texts.ok()) return texts;
  if (c.index.dim <= 0) {
    return Invalid(fmt::format("index_config.dim must be > 0 (got {})", c.index.dim));
  }
  if (c.index.dim > kMaxDim) {
    return Invalid(fmt::format("index_config.dim must be <= {} for sqlite-vec (got {})", kMaxDim, c.index.dim));
  }
  RETURN_IF_ERROR(ValidateIndex(c.index));
  RETURN_IF_ERROR(ValidateFilterColumns(c.filter_columns, "filter_columns"));
  const ShardingConfig& s = c.sharding;
  if (s.num_dbs && *s.num_dbs <= 0) return Invalid(fmt::format("num_dbs must be > 0, got {}", *s.num_dbs));
  if (s.num_dbs) RETURN_IF_ERROR(CheckShardCount(*s.num_dbs, "num_dbs"));
  if (s.num_probes < 1) return Invalid(fmt::format("num_probes must be >= 1 (got {})", s.num_probes));

  if ((s.strategy == Strategy::kExplicit || s.strategy == Strategy::kCel) && s.num_probes > 1) {
    return Invalid(fmt::format("num_probes is only supported for CLUSTER and LSH sharding, got {} for {}",
                               s.num_probes, StrategyName(s.strategy)));
  }
  Status st;
  switch (s.strategy) {
    case Strategy::kCluster: st = ValidateCluster(s, c.index.dim); break;
    case Strategy::kLsh: st = ValidateLsh(s, c.index.dim); break;
    case Strategy::kExplicit:
      if (!s.num_dbs) st = Invalid("num_dbs must be provided for EXPLICIT sharding");
      break;
    case Strategy::kCel: st = ValidateCel(s); break;
  }
  if (!st.ok()) return st;
  RETURN_IF_ERROR(CheckShardingFieldsTakeEffect(s));
  if (c.run_id) {
    Status run_id = ValidateRunId(*c.run_id);
    if (!run_id.ok()) return run_id;
  }
  RETURN_IF_ERROR(ValidateKeyLayout(LayoutOf(c)));
  if (c.batch_size <= 0) return Invalid(fmt::format("batch_size must be > 0 (got {})", c.batch_size));
  RETURN_IF_ERROR(CheckThreadCount("max_parallel_shards", c.max_parallel_shards));
  for (const auto& [key, value] : c.custom_manifest_fields_json) {
    if (key == "vector" || key == "shardvec") {
      return Invalid(fmt::format("custom manifest field '{}' is reserved", key));
    }
  }
  return Status::OK();
}

}  // namespace shardvec
