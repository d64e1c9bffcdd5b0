// Listing and pruning a shard cache folder (include/shardvec/shard_cache_admin.h). Entries are
// reached without following symlinks: only real folders named "db=…" count, and only the regular
// files and symlinks inside one are removed (unlink never follows), so a link planted in the cache
// cannot make a prune delete anything outside it.
#include "shardvec/shard_cache_admin.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "common/file_lock.h"
#include "common/private_dir.h"
#include "common/status_macros.h"
#include "read/shard_cache.h"

namespace shardvec {
namespace fs = std::filesystem;

namespace {

Status CheckCacheFolder(const std::string& cache_dir) {
  struct stat st {};
  if (::lstat(cache_dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound(fmt::format("shard cache folder '{}' does not exist", cache_dir));
    return Status::IOError(fmt::format("cannot stat shard cache folder '{}': {}", cache_dir, std::strerror(errno)));
  }
  return EnsurePrivateFolder(cache_dir, "shard cache folder (cache_dir)");
}

// The bytes of the regular files directly in `folder` (nothing followed).
int64_t FolderBytes(const fs::path& folder) {
  int64_t bytes = 0;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) bytes += static_cast<int64_t>(st.st_size);
  }
  return bytes;
}

// Locks `name` in `folder` exclusively without waiting; nullopt when someone holds it.
std::optional<FileLock> TryExclusive(const fs::path& folder, std::string_view name) {
  Result<std::optional<FileLock>> lock =
      FileLock::Acquire(folder / std::string(name), FileLock::Mode::kExclusive, /*wait=*/false);
  if (!lock.ok() || !lock->has_value()) return std::nullopt;
  return std::move(**lock);
}

bool InUse(const fs::path& folder) {
  struct stat st {};
  if (::lstat((folder / std::string(ShardCache::kUseLockName)).c_str(), &st) != 0) return false;
  return !TryExclusive(folder, ShardCache::kUseLockName).has_value();
}

// Removes an unused shard folder: both its locks held exclusively (no snapshot uses it, no download
// writes it), its files unlinked, then the locks, then the folder. False when it is in use.
bool RemoveUnused(const fs::path& folder) {
  std::optional<FileLock> use = TryExclusive(folder, ShardCache::kUseLockName);
  if (!use) return false;
  std::optional<FileLock> download = TryExclusive(folder, ShardCache::kDownloadLockName);
  if (!download) return false;
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file_name = it->path().filename().string();
    if (file_name == ShardCache::kUseLockName || file_name == ShardCache::kDownloadLockName) continue;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) files.push_back(it->path());
  }
  for (const fs::path& file : files) ::unlink(file.c_str());
  download->UnlinkAndRelease();
  use->UnlinkAndRelease();
  ::rmdir(folder.c_str());  // fails, harmlessly, when a reader made it again meanwhile
  return true;
}

}  // namespace

Result<std::vector<CachedShardFolder>> ListShardCache(const std::string& cache_dir) {
  RETURN_IF_ERROR(CheckCacheFolder(cache_dir));
  std::vector<CachedShardFolder> out;
  std::error_code ec;
  for (fs::directory_iterator it(cache_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    struct stat st {};
    if (!name.starts_with("db=") || ::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    CachedShardFolder folder;
    folder.name = name;
    folder.bytes = FolderBytes(it->path());
    folder.last_used_unix_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    folder.in_use = InUse(it->path());
    out.push_back(std::move(folder));
  }
  if (ec) return Status::IOError(fmt::format("cannot list shard cache folder '{}': {}", cache_dir, ec.message()));
  std::sort(out.begin(), out.end(), [](const CachedShardFolder& a, const CachedShardFolder& b) {
    return a.last_used_unix_ns != b.last_used_unix_ns ? a.last_used_unix_ns < b.last_used_unix_ns
                                                                : a.name < b.name;
  });
  return out;
}

Result<ShardCachePruneResult> PruneShardCache(const std::string& cache_dir, int64_t max_bytes) {
  if (max_bytes < 0) return Status::InvalidArgument(fmt::format("max_cache_bytes must be >= 0 (got {})", max_bytes));
  ASSIGN_OR_RETURN(std::vector<CachedShardFolder> folders, ListShardCache(cache_dir));
  ShardCachePruneResult result;
  for (const CachedShardFolder& f : folders) {
    result.kept_bytes += f.bytes;
    if (f.in_use) result.in_use_bytes += f.bytes;
  }
  result.kept_folders = static_cast<int64_t>(folders.size());
  for (const CachedShardFolder& f : folders) {  // least recently used first
    if (result.kept_bytes <= max_bytes && max_bytes > 0) break;
    if (f.in_use || !RemoveUnused(fs::path(cache_dir) / f.name)) continue;
    ++result.removed_folders;
    result.removed_bytes += f.bytes;
    --result.kept_folders;
    result.kept_bytes -= f.bytes;
  }
  return result;
}

}  // namespace shardvec
