// One shard's file: built from a stream of rows in a local attempt folder, digested, uploaded to its
// attempt's key, and the local files removed. WriteSharded (rows from a spool) and a distributed task
// (rows from the worker's records) both end here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "shard/shard_builder.h"
#include "shardvec/object_store.h"
#include "shardvec/writer.h"

namespace shardvec {

// <local_root>/run_id=R: a run's local build folder (local_root empty: <tmp>/shardvec).
std::filesystem::path LocalRunDir(const std::string& local_root, std::string_view run_id);
// <run_dir>/db=00003/attempt=00
std::filesystem::path LocalAttemptDir(const std::filesystem::path& run_dir, int64_t db_id, int64_t attempt);

struct ShardFileTarget {
  ObjectStore* store = nullptr;
  std::string run_id;
  int64_t db_id = 0;
  int64_t attempt = 0;
  std::filesystem::path build_dir;  // must not exist yet; removed afterwards, success or not
  ShardBuildOptions options;
};

// Adds every row of the shard to the builder (rows already checked, payloads canonical).
using ShardRowFeed = std::function<Status(ShardBuilder&)>;

// Builds, digests and uploads the shard to ShardKey(run_id, db_id, attempt). A shard without rows is
// not uploaded: its ShardInfo has row_count 0 and no digest.
Result<ShardInfo> BuildAndUploadShard(const ShardFileTarget& target, const ShardRowFeed& feed);

}  // namespace shardvec
