// Small POSIX file helpers with errors that name the path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec {

Result<std::string> ReadWholeFile(const std::filesystem::path& path);
// Reads up to `length` bytes at `offset` of an open file (fewer only at its end); errors name `path`.
Result<std::string> ReadFileRange(int fd, const std::filesystem::path& path, int64_t offset, int64_t length);

// Closes a file descriptor when it goes out of scope.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd();
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};
// Writes `data` to `path` (created/truncated) and fsyncs it.
Status WriteFileSynced(const std::filesystem::path& path, std::string_view data);
// Copies `from` to `to` (created/truncated with `mode`, before the umask) and fsyncs it.
Status CopyFileSynced(const std::filesystem::path& from, const std::filesystem::path& to, int mode = 0644);
// fsync of a directory makes a rename or link inside it durable.
// fsync of a file makes its bytes durable.
Status FsyncFile(const std::filesystem::path& path);
Status FsyncDirectory(const std::filesystem::path& dir);
Status CreateDirectories(const std::filesystem::path& dir);
// Like CreateDirectories, but every folder it creates is 0700 (existing ones are left as they are):
// local copies of shards (the reader's cache, downloads, build folders) are for this user only.
Status CreatePrivateDirectories(const std::filesystem::path& dir);
// A unique hidden sibling name for staging writes: "<dir>/.<name>.tmp.<random>".
std::filesystem::path TempSiblingPath(const std::filesystem::path& path);

}  // namespace shardvec
