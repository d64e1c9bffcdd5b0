#include "shard/ranged_object_vfs.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

namespace shardvec {
namespace {

constexpr const char* kVfsName = "shardvec-ranged";
constexpr std::string_view kNamePrefix = "/shardvec-ranged/";

struct Registered {
  std::shared_ptr<RangedObject> object;
  std::mutex mu;
  Status first_error;  // since the last TakeRangedReadError
};

std::mutex g_registry_mu;
std::map<std::string, std::shared_ptr<Registered>, std::less<>>& Registry() {
  static auto* registry = new std::map<std::string, std::shared_ptr<Registered>, std::less<>>();
  return *registry;
}

std::shared_ptr<Registered> Lookup(std::string_view name) {
  std::lock_guard<std::mutex> lock(g_registry_mu);
  const auto it = Registry().find(name);
  return it == Registry().end() ? nullptr : it->second;
}

sqlite3_vfs g_vfs;
sqlite3_vfs* g_base = nullptr;

// An open file of ours: SQLite's header first, then what keeps the object alive.
struct RangedFile {
  sqlite3_file base;
  std::shared_ptr<Registered> registered;
};

RangedFile* AsRanged(sqlite3_file* file) { return reinterpret_cast<RangedFile*>(file); }

int Close(sqlite3_file* file) {
  AsRanged(file)->registered.~shared_ptr<Registered>();
  return SQLITE_OK;
}

int Read(sqlite3_file* file, void* buffer, int amount, sqlite3_int64 offset) {
  Registered& r = *AsRanged(file)->registered;
  const int64_t size = r.object->size();
  const int64_t available = std::clamp<int64_t>(size - offset, 0, amount);
  Status st = r.object->Read(offset, available, static_cast<char*>(buffer));
  if (!st.ok()) {
    std::lock_guard<std::mutex> lock(r.mu);
    if (r.first_error.ok()) r.first_error = std::move(st);
    return SQLITE_IOERR_READ;
  }
  if (available < amount) {
    std::memset(static_cast<char*>(buffer) + available, 0, static_cast<size_t>(amount - available));
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

int Write(sqlite3_file*, const void*, int, sqlite3_int64) { return SQLITE_READONLY; }
int Truncate(sqlite3_file*, sqlite3_int64) { return SQLITE_READONLY; }
int Sync(sqlite3_file*, int) { return SQLITE_OK; }
int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  *size = AsRanged(file)->registered->object->size();
  return SQLITE_OK;
}
int Lock(sqlite3_file*, int) { return SQLITE_OK; }
int Unlock(sqlite3_file*, int) { return SQLITE_OK; }
int CheckReservedLock(sqlite3_file*, int* reserved) {
  *reserved = 0;
  return SQLITE_OK;
}
int FileControl(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
int SectorSize(sqlite3_file*) { return 0; }
int DeviceCharacteristics(sqlite3_file*) { return SQLITE_IOCAP_IMMUTABLE; }

const sqlite3_io_methods kIoMethods = {
    1, Close, Read, Write, Truncate, Sync, FileSize, Lock, Unlock, CheckReservedLock,
    FileControl, SectorSize, DeviceCharacteristics,
    nullptr, nullptr, nullptr, nullptr,  // version 1: no shared memory (no WAL)
    nullptr, nullptr,                    // and no memory mapping
};

int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  std::shared_ptr<Registered> registered = name ? Lookup(name) : nullptr;
  if (registered == nullptr) {
    if (name != nullptr && std::string_view(name).starts_with(kNamePrefix)) return SQLITE_CANTOPEN;
    return g_base->xOpen(g_base, name, file, flags, out_flags);  // temp files and the like
  }
  if ((flags & SQLITE_OPEN_READONLY) == 0) return SQLITE_READONLY;
  auto* ranged = AsRanged(file);
  new (&ranged->registered) std::shared_ptr<Registered>(std::move(registered));
  ranged->base.pMethods = &kIoMethods;
  if (out_flags != nullptr) *out_flags = SQLITE_OPEN_READONLY;
  return SQLITE_OK;
}

int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
  if (std::string_view(name).starts_with(kNamePrefix)) return SQLITE_READONLY;
  return g_base->xDelete(g_base, name, sync_dir);
}

int Access(sqlite3_vfs*, const char* name, int flags, int* result) {
  if (std::string_view(name).starts_with(kNamePrefix)) {
    // Only the database itself exists (no journal or WAL beside it), and it is never writable.
    *result = flags != SQLITE_ACCESS_READWRITE && Lookup(name) != nullptr;
    return SQLITE_OK;
  }
  return g_base->xAccess(g_base, name, flags, result);
}

int FullPathname(sqlite3_vfs*, const char* name, int out_size, char* out) {
  if (std::string_view(name).starts_with(kNamePrefix)) {
    const size_t length = std::strlen(name);
    if (length + 1 > static_cast<size_t>(out_size)) return SQLITE_CANTOPEN;
    std::memcpy(out, name, length + 1);
    return SQLITE_OK;
  }
  return g_base->xFullPathname(g_base, name, out_size, out);
}

}  // namespace

Result<std::string> RangedObjectVfsName() {
  static std::once_flag once;
  static int rc = SQLITE_ERROR;
  std::call_once(once, [] {
    g_base = sqlite3_vfs_find(nullptr);
    if (g_base == nullptr) return;
    g_vfs = *g_base;  // randomness, sleep, time and temp files are the default VFS's
    g_vfs.iVersion = std::min(g_base->iVersion, 2);
    g_vfs.pNext = nullptr;
    g_vfs.zName = kVfsName;
    g_vfs.szOsFile = std::max<int>(g_base->szOsFile, sizeof(RangedFile));
    g_vfs.xOpen = Open;
    g_vfs.xDelete = Delete;
    g_vfs.xAccess = Access;
    g_vfs.xFullPathname = FullPathname;
    rc = sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0);
  });
  if (rc != SQLITE_OK) {
    return Status::Internal(fmt::format("cannot register the SQLite VFS '{}': {}", kVfsName, sqlite3_errstr(rc)));
  }
  return std::string(kVfsName);
}

std::string RegisterRangedObject(std::shared_ptr<RangedObject> object) {
  static std::atomic<uint64_t> next{0};
  std::string name = fmt::format("{}{}", kNamePrefix, next.fetch_add(1));
  auto registered = std::make_shared<Registered>();
  registered->object = std::move(object);
  std::lock_guard<std::mutex> lock(g_registry_mu);
  Registry().emplace(name, std::move(registered));
  return name;
}

void UnregisterRangedObject(const std::string& name) {
  std::shared_ptr<Registered> gone;  // released after the lock
  std::lock_guard<std::mutex> lock(g_registry_mu);
  const auto it = Registry().find(name);
  if (it == Registry().end()) return;
  gone = std::move(it->second);
  Registry().erase(it);
}

Status TakeRangedReadError(const std::string& name) {
  std::shared_ptr<Registered> registered = Lookup(name);
  if (registered == nullptr) return Status::OK();
  std::lock_guard<std::mutex> lock(registered->mu);
  return std::exchange(registered->first_error, Status::OK());
}

Result<std::shared_ptr<RangedObject>> MakeSqliteRangedObject(std::shared_ptr<ObjectStore> store,
                                                             const std::string& key, int64_t size,
                                                             std::string_view head, std::string_view shard_name,
                                                             int64_t page_cache_pages,
                                                             std::shared_ptr<RangeReadCounters> counters,
                                                             ThreadPool* pool) {
  // The page size is bytes 16-17 of the SQLite header; 1 means 65536.
  constexpr std::string_view kMagic("SQLite format 3\0", 16);
  if (head.size() < 100 || head.substr(0, 16) != kMagic) {
    return Status::Corruption(fmt::format("shard {}: '{}' is not an SQLite database", shard_name, key));
  }
  const int64_t raw = (static_cast<unsigned char>(head[16]) << 8) | static_cast<unsigned char>(head[17]);
  const int64_t page_bytes = raw == 1 ? 65536 : raw;
  if (page_bytes < 512 || (page_bytes & (page_bytes - 1)) != 0) {
    return Status::Corruption(fmt::format("shard {}: '{}' declares a page size of {}", shard_name, key, raw));
  }
  RangedObjectOptions options;
  options.page_bytes = page_bytes;
  options.page_cache_pages = page_cache_pages;
  auto object = std::make_shared<RangedObject>(std::move(store), key, size, options, std::move(counters), pool);
  object->Seed(head.substr(0, std::min<size_t>(head.size(), static_cast<size_t>(kMaxSqlitePageBytes))));
  return object;
}

}  // namespace shardvec
