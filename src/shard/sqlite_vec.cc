#include "shard/sqlite_vec.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string_view>

#include "common/sqlite/sqlite_setup.h"
#include "common/status_macros.h"
#include "shard/pinned_file_vfs.h"

namespace shardvec {
namespace {

using ExtensionInit = int (*)(sqlite3*, char**, const sqlite3_api_routines*);

std::once_flag g_once;
Status g_status;
std::string g_path;
std::mutex g_default_mu;
std::string g_default_path;  // SetDefaultSqliteVecPath's

std::string DefaultPath() {
  const char* env = std::getenv("SHARDVEC_VEC0_PATH");
  if (env && *env) return env;
  std::lock_guard<std::mutex> lock(g_default_mu);
  return g_default_path.empty() ? std::string(SHARDVEC_VEC0_PATH) : g_default_path;
}

void LoadOnce(const std::string& path) {
  ConfigureSqliteOnce();
  g_path = path;
  if (!std::filesystem::exists(g_path)) {
    g_status = Status::NotFound(fmt::format(
        "sqlite-vec extension not found at '{}'; run scripts/setup, set SHARDVEC_VEC0_PATH or pass vec0_path", g_path));
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
  std::call_once(g_once, [] { LoadOnce(DefaultPath()); });
  return g_status;
}

Status UseSqliteVec(std::string_view field, const std::string& path) {
  if (path.empty()) return EnsureSqliteVecLoaded();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::InvalidArgument(fmt::format(
        "{}='{}': no such file (the sqlite-vec 0.1.9 loadable extension, vec0.so)", field, path));
  }
  std::call_once(g_once, [&path] { LoadOnce(path); });
  RETURN_IF_ERROR(g_status);
  const auto same = std::filesystem::equivalent(path, g_path, ec);
  if (!same || ec) {
    return Status::InvalidArgument(fmt::format(
        "{}='{}': this process already loaded sqlite-vec from '{}' (vec0 loads once per process)", field,
        path, g_path));
  }
  return Status::OK();
}

void SetDefaultSqliteVecPath(std::string path) {
  std::lock_guard<std::mutex> lock(g_default_mu);
  g_default_path = std::move(path);
}

std::string SqliteVecPath() {
  if (!g_path.empty()) return g_path;
  return DefaultPath();
}

}  // namespace shardvec
