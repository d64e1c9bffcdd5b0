#include "write/shard_task.h"

#include <fmt/format.h>

#include <set>
#include <string>

#include "common/digest.h"
#include "common/file_util.h"
#include "common/private_dir.h"
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

namespace {

constexpr std::string_view kRunDirPrefix = "run_id=";

fs::path RunLockPath(const fs::path& root, std::string_view run_id) {
  return root / fmt::format(".{}{}.lock", kRunDirPrefix, run_id);
}

// Removes <root>/run_id=R and its lock file unless a live build or task holds the lock.
void ReclaimRunFolder(const fs::path& root, std::string_view run_id) {
  Result<std::optional<FileLock>> lock = FileLock::Acquire(RunLockPath(root, run_id), FileLock::Mode::kExclusive,
                                                           /*wait=*/false);
  if (!lock.ok() || !lock->has_value()) return;
  std::error_code ec;
  fs::remove_all(root / fmt::format("{}{}", kRunDirPrefix, run_id), ec);
  (*lock)->UnlinkAndRelease();
}

// Reclaims every run folder (and lone lock file) in `root` that no live process holds.
void ReclaimAbandonedRuns(const fs::path& root) {
  std::set<std::string> run_ids;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::string_view rest = name;
    if (rest.starts_with('.') && rest.ends_with(".lock")) rest = rest.substr(1, rest.size() - 6);
    if (rest.starts_with(kRunDirPrefix) && rest.size() > kRunDirPrefix.size()) {
      run_ids.emplace(rest.substr(kRunDirPrefix.size()));
    }
  }
  for (const std::string& run_id : run_ids) ReclaimRunFolder(root, run_id);
}

}  // namespace

Result<LocalRunFolder> ClaimLocalRunFolder(const std::string& local_root, std::string_view run_id,
                                           FileLock::Mode mode) {
  LocalRunFolder folder;
  if (local_root.empty()) {
    ASSIGN_OR_RETURN(folder.root, EnsureDefaultPrivateFolder({"build"}, "default build folder"));
  } else {
    RETURN_IF_ERROR(EnsurePrivateFolder(local_root, "build folder (local_root)"));
    folder.root = local_root;
  }
  ReclaimAbandonedRuns(folder.root);
  folder.run_id = std::string(run_id);
  folder.dir = folder.root / fmt::format("{}{}", kRunDirPrefix, run_id);
  // A task waits out another process's brief reclaim; a whole build never shares its run folder.
  ASSIGN_OR_RETURN(folder.lock, FileLock::Acquire(RunLockPath(folder.root, run_id), mode,
                                                  /*wait=*/mode == FileLock::Mode::kShared));
  if (!folder.lock) {
    return Status::AlreadyExists(fmt::format(
        "local build directory '{}' is in use: another live build with run_id '{}' runs in this local_root; "
        "wait for it or pick another run_id", folder.dir.string(), run_id));
  }
  if (mode == FileLock::Mode::kExclusive) {
    std::error_code ec;
    fs::remove_all(folder.dir, ec);  // the lock was free, so anything here is a killed build's
  }
  return folder;
}

void ReleaseLocalRunFolder(LocalRunFolder& folder) {
  folder.lock.reset();
  ReclaimRunFolder(folder.root, folder.run_id);
}

fs::path LocalAttemptDir(const fs::path& run_dir, int64_t db_id, int64_t attempt) {
  return run_dir / fmt::format("db={:05d}", db_id) / fmt::format("attempt={:02d}", attempt);
}

Result<ShardInfo> BuildAndUploadShard(const ShardFileTarget& t, const ShardRowFeed& feed,
                                      std::vector<uint64_t>* id_hashes) {
  RemoveBuildDir cleanup{t.build_dir};
  RETURN_IF_ERROR(CreatePrivateDirectories(t.build_dir));
  const fs::path db_path = t.build_dir / std::string(kShardFileName);
  ShardBuildOptions options = t.options;
  options.hash_ids = id_hashes != nullptr;
  ASSIGN_OR_RETURN(std::unique_ptr<ShardBuilder> builder, ShardBuilder::Create(db_path, options));
  RETURN_IF_ERROR(feed(*builder));
  ShardInfo info;
  info.row_count = builder->row_count();
  info.id_type = builder->id_type();
  ASSIGN_OR_RETURN(info.db_bytes, builder->Seal());
  info.sublists = builder->sublist_count();
  info.filter_stats = builder->filter_stats_json();
  if (id_hashes != nullptr) *id_hashes = builder->TakeIdHashes();
  builder.reset();
  if (info.row_count == 0) {
    info.db_id = t.db_id;
    info.attempt = t.attempt;
    info.db_url = t.store->Url(ShardDirKey(t.run_id, t.db_id, t.attempt, t.layout));
    info.checkpoint_id = NewUuidHex();
    return info;
  }
  RETURN_IF_ERROR(UploadShardFile(t, db_path, &info));
  return info;
}

Status UploadShardFile(const ShardFileTarget& t, const fs::path& file, ShardInfo* info) {
  info->db_id = t.db_id;
  info->attempt = t.attempt;
  info->db_url = t.store->Url(ShardDirKey(t.run_id, t.db_id, t.attempt, t.layout));
  info->checkpoint_id = NewUuidHex();
  ASSIGN_OR_RETURN(FileDigest digest, DigestFile(file));
  info->digest = digest.digest;
  info->db_bytes = digest.size;
  return t.store->PutFile(ShardKey(t.run_id, t.db_id, t.attempt, t.layout), file)
      .WithContext(fmt::format("upload of shard {}", t.db_id));
}

}  // namespace shardvec
