#include "shard/pinned_file_vfs.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <fcntl.h>

#include <cstring>
#include <mutex>
#include <string_view>

namespace shardvec {
namespace {

constexpr const char* kVfsName = "shardvec-pinned";
constexpr std::string_view kFdFolder = "/proc/self/fd/";

sqlite3_vfs g_pinned_vfs;
sqlite3_syscall_ptr g_unix_open = nullptr;

// The unix VFS opens every file O_NOFOLLOW; /proc/self/fd/N is a link by nature, so for those
// names alone the flag is dropped. Every other open is the unix VFS's own.
int OpenKeepingFdLinks(const char* path, int flags, int mode) {
  if (std::string_view(path).starts_with(kFdFolder)) flags &= ~O_NOFOLLOW;
  return reinterpret_cast<int (*)(const char*, int, int)>(g_unix_open)(path, flags, mode);
}

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
    sqlite3_vfs* base = sqlite3_vfs_find(nullptr);
    if (base == nullptr || base->iVersion < 3 || base->xGetSystemCall == nullptr) return;
    g_unix_open = base->xGetSystemCall(base, "open");
    if (g_unix_open == nullptr ||
        base->xSetSystemCall(base, "open", reinterpret_cast<sqlite3_syscall_ptr>(OpenKeepingFdLinks)) != SQLITE_OK) {
      return;
    }
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
