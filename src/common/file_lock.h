// Advisory locks (flock) on small lock files, held while a process works on what the lock file
// guards and released by the kernel when the process dies: how a process tells leftovers of a
// killed one (lock free) from files another live process is still writing (lock held).
#pragma once

#include <filesystem>
#include <optional>

#include "shardvec/status.h"

namespace shardvec {

class FileLock {
 public:
  enum class Mode { kShared, kExclusive };

  // Locks the file at `path` (created 0600 when missing). With `wait` false, nullopt (not an error)
  // when another process holds a conflicting lock. The lock is taken on the file `path` names once
  // locked: a lock file another process unlinked meanwhile (after removing what it guarded) is
  // dropped and the new one locked instead.
  static Result<std::optional<FileLock>> Acquire(const std::filesystem::path& path, Mode mode, bool wait);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  // Removes the lock file, still locked (its owner has removed what it guarded), then releases it.
  void UnlinkAndRelease();
  const std::filesystem::path& path() const { return path_; }

 private:
  FileLock(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  void Release();

  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace shardvec
