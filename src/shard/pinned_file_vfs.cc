#include "shard/pinned_file_vfs.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cstring>
#include <mutex>

namespace shardvec {
namespace {

constexpr const char* kVfsName = "shardvec-pinned";

sqlite3_vfs g_pinned_vfs;

// The name as given (it is already absolute): no symbolic link in it is resolved.
int KeepFullPathname(sqlite3_vfs*, const char* name, int out_size, char* out) {
  const size_t length = std::strlen(name);
  if (name[0] != '/' || length + 1 > static_cast<size_t>(out_size)) return SQLITE_CANTOPEN;
  std::memcpy(out, name, length + 1);
  return SQLITE_OK;
}

}  // namespace

Result<std::string> PinnedFileVfsName() {
  static std::once_flag once;
  static int rc = SQLITE_ERROR;
  std::call_once(once, [] {
    const sqlite3_vfs* base = sqlite3_vfs_find(nullptr);
    if (base == nullptr) return;
    g_pinned_vfs = *base;  // the default VFS's methods and state, under another name
    g_pinned_vfs.pNext = nullptr;
    g_pinned_vfs.zName = kVfsName;
    g_pinned_vfs.xFullPathname = KeepFullPathname;
    rc = sqlite3_vfs_register(&g_pinned_vfs, /*makeDflt=*/0);
  });
  if (rc != SQLITE_OK) {
    return Status::Internal(fmt::format("cannot register the SQLite VFS '{}': {}", kVfsName, sqlite3_errstr(rc)));
  }
  return std::string(kVfsName);
}

std::string PinnedFileName(int fd) { return fmt::format("/proc/self/fd/{}", fd); }

}  // namespace shardvec
