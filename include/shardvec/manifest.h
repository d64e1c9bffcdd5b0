// A snapshot's manifest as data: what the reference's manifest (format_version 4) holds. Manifest
// stores (include/shardvec/manifest_store.h) persist and return it; the object-store layout keeps it
// as a SQLite database (docs/snapshot-format.md#manifest).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace shardvec {

inline constexpr int64_t kManifestFormatVersion = 4;

struct ManifestShard {
  int64_t db_id = 0;
  std::optional<std::string> db_url;
  int64_t attempt = 0;
  int64_t row_count = 0;
  int64_t db_bytes = 0;
  std::optional<std::string> checkpoint_id;
  // writer_info as JSON (sorted keys, Python separators when written).
  nlohmann::json writer_info = {{"attempt", 0}, {"duration_ms", 0}, {"stage_id", nullptr},
                                {"task_attempt_id", nullptr}};
};

struct Manifest {
  std::string run_id;
  std::string created_at;
  int64_t num_dbs = 0;
  std::string s3_prefix;
  std::string key_col = "_vector_id";
  // The reference writes a KV placeholder here even for vector snapshots.
  nlohmann::json sharding = {{"cel_columns", nullptr}, {"cel_expr", nullptr},
                             {"hash_algorithm", "xxh3_64"}, {"routing_values", nullptr},
                             {"strategy", "hash"}};
  std::string db_path_template = "db={db_id:05d}";
  std::string shard_prefix = "shards";
  int64_t format_version = kManifestFormatVersion;
  std::string key_encoding = "raw";
  nlohmann::json custom = nlohmann::json::object();
  std::vector<ManifestShard> shards;  // ascending db_id
};

}  // namespace shardvec
