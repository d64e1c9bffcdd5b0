#include "write/shard_task.h"

#include <fmt/format.h>

#include "common/digest.h"
#include "common/fault_point.h"
#include "common/file_util.h"
#include "common/random_id.h"
#include "common/status_macros.h"
#include "format/keys.h"

namespace shardvec {
namespace fs = std::filesystem;

namespace {

// Removes an attempt's local folder however the build ends, then its db= folder once no other attempt
// uses it.
struct RemoveBuildDir {
  const fs::path& dir;
  ~RemoveBuildDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::remove(dir.parent_path(), ec);  // fails (harmlessly) while not empty
  }
};

}  // namespace

fs::path LocalRunDir(const std::string& local_root, std::string_view run_id) {
  const fs::path root = local_root.empty() ? fs::temp_directory_path() / "shardvec" : fs::path(local_root);
  return root / ("run_id=" + std::string(run_id));
}

fs::path LocalAttemptDir(const fs::path& run_dir, int64_t db_id, int64_t attempt) {
  return run_dir / fmt::format("db={:05d}", db_id) / fmt::format("attempt={:02d}", attempt);
}

Result<ShardInfo> BuildAndUploadShard(const ShardFileTarget& t, const ShardRowFeed& feed) {
  RemoveBuildDir cleanup{t.build_dir};
  RETURN_IF_ERROR(CreatePrivateDirectories(t.build_dir));
  const fs::path db_path = t.build_dir / std::string(kShardFileName);
  ASSIGN_OR_RETURN(std::unique_ptr<ShardBuilder> builder, ShardBuilder::Create(db_path, t.options));
  RETURN_IF_ERROR(feed(*builder));
  ShardInfo info;
  info.db_id = t.db_id;
  info.attempt = t.attempt;
  info.db_url = t.store->Url(ShardDirKey(t.run_id, t.db_id, t.attempt));
  info.row_count = builder->row_count();
  info.checkpoint_id = NewUuidHex();
  ASSIGN_OR_RETURN(info.db_bytes, builder->Seal());
  builder.reset();
  if (info.row_count == 0) return info;
  ASSIGN_OR_RETURN(FileDigest digest, DigestFile(db_path));
  info.digest = digest.digest;
  RETURN_IF_ERROR(t.store->PutFile(ShardKey(t.run_id, t.db_id, t.attempt), db_path)
                      .WithContext(fmt::format("upload of shard {}", t.db_id)));
  RETURN_IF_ERROR(FaultPoint(kFaultAfterShardUpload));
  return info;
}

}  // namespace shardvec
