#include "shard/sqlite_vec.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "common/sqlite/sqlite_setup.h"
#include "shard/pinned_file_vfs.h"

namespace shardvec {
namespace {

using ExtensionInit = int (*)(sqlite3*, char**, const sqlite3_api_routines*);

std::once_flag g_once;
Status g_status;
std::string g_path;

void LoadOnce() {
  ConfigureSqliteOnce();
  const char* env = std::getenv("SHARDVEC_VEC0_PATH");
  g_path = (env && *env) ? env : SHARDVEC_VEC0_PATH;
  if (!std::filesystem::exists(g_path)) {
    g_status = Status::NotFound(fmt::format(
        "sqlite-vec extension not found at '{}'; run scripts/setup (or set SHARDVEC_VEC0_PATH)", g_path));
    return;
  }
  void* handle = dlopen(g_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    g_status = Status::IOError(fmt::format("cannot load sqlite-vec from '{}': {}", g_path, dlerror()));
    return;
  }
  auto init = reinterpret_cast<ExtensionInit>(dlsym(handle, "sqlite3_vec_init"));
  if (init == nullptr) {
    g_status = Status::IOError(fmt::format("'{}' has no sqlite3_vec_init entry point", g_path));
    return;
  }
  // Every connection opened from now on gets vec0, without enabling extension loading on it.
  if (sqlite3_auto_extension(reinterpret_cast<void (*)()>(init)) != SQLITE_OK) {
    g_status = Status::Internal("sqlite3_auto_extension failed for sqlite-vec");
    return;
  }
  // The pinned-file VFS replaces the unix VFS's `open` for the whole process: done here, before
  // the first shard is built or opened, rather than by whichever search first needs it while other
  // threads may be opening files.
  if (Result<std::string> vfs = PinnedFileVfsName(); !vfs.ok()) g_status = vfs.status();
}

}  // namespace

Status EnsureSqliteVecLoaded() {
  std::call_once(g_once, LoadOnce);
  return g_status;
}

std::string SqliteVecPath() {
  if (!g_path.empty()) return g_path;
  const char* env = std::getenv("SHARDVEC_VEC0_PATH");
  return (env && *env) ? env : SHARDVEC_VEC0_PATH;
}

}  // namespace shardvec
