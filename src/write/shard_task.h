// One shard's file: built from a stream of rows in a local attempt folder, digested, uploaded to its
// attempt's key, and the local files removed. WriteSharded (rows from a spool) and a distributed task
// (rows from the worker's records) both end here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/file_lock.h"
#include "format/keys.h"
#include "shard/shard_builder.h"
#include "shardvec/config.h"
#include "shardvec/object_store.h"
#include "shardvec/writer.h"

namespace shardvec {

// A run's local build folder <root>/run_id=R, held through a lock on <root>/.run_id=R.lock while a
// build or a task of the run uses it. The lock dies with its process, so the folders of killed
// builds are told from live ones and reclaimed by the next build in the same root.
struct LocalRunFolder {
  std::filesystem::path root;
  std::string run_id;
  std::filesystem::path dir;  // <root>/run_id=R; created by the caller when needed
  std::optional<FileLock> lock;
};

// Resolves `local_root` (empty: this user's default <private root>/build), creates it and checks it
// is private, reclaims the run folders killed builds left in it, and locks this run's folder:
// kExclusive for a whole build (another live build of the same run id in this root is an error),
// kShared for a distributed task (tasks of one run may build side by side).
Result<LocalRunFolder> ClaimLocalRunFolder(const std::string& local_root, std::string_view run_id,
                                           FileLock::Mode mode);
// Unlocks the run folder, then removes it (and its lock file) unless another live task holds it.
void ReleaseLocalRunFolder(LocalRunFolder& folder);
// <run_dir>/db=00003/attempt=00
std::filesystem::path LocalAttemptDir(const std::filesystem::path& run_dir, int64_t db_id, int64_t attempt);

struct ShardFileTarget {
  ObjectStore* store = nullptr;
  std::string run_id;
  int64_t db_id = 0;
  int64_t attempt = 0;
  std::filesystem::path build_dir;  // must not exist yet; removed afterwards, success or not
  ShardBuildOptions options;
  KeyLayout layout = {};
};

// Takes one token from the write rate limiter before each batch_size rows of one shard.
class BatchPacer {
 public:
  explicit BatchPacer(const WriteConfig& config) : limiter_(config.write_rate_limiter.get()), batch_size_(config.batch_size) {}
  Status BeforeRow() {
    if (limiter_ == nullptr || rows_++ % batch_size_ != 0) return Status::OK();
    return limiter_->Acquire(1);
  }

 private:
  RateLimiter* limiter_;
  int64_t batch_size_;
  int64_t rows_ = 0;
};

// Adds every row of the shard to the builder (rows already checked, payloads canonical).
using ShardRowFeed = std::function<Status(ShardBuilder&)>;

// Builds, digests and uploads the shard to ShardKey(run_id, db_id, attempt, layout). A shard without rows is
// not uploaded: its ShardInfo has row_count 0 and no digest. With `id_hashes`, it gets every row's
// IdIndexHash (ShardBuildOptions::hash_ids; 8 bytes per row) for the snapshot's id index.
Result<ShardInfo> BuildAndUploadShard(const ShardFileTarget& target, const ShardRowFeed& feed,
                                      std::vector<uint64_t>* id_hashes = nullptr);

// Uploads a finished shard file (`target.build_dir` unused) to ShardKey(run_id, db_id, attempt,
// layout) and fills `info`'s db_id, attempt, db_url, checkpoint_id, digest and db_bytes.
Status UploadShardFile(const ShardFileTarget& target, const std::filesystem::path& file, ShardInfo* info);

}  // namespace shardvec
