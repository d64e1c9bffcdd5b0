// Small POSIX file helpers with errors that name the path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec {

// Reads a whole file of at most `max_bytes`: a larger regular file is refused before reading, naming
// its size and the limit; a character device (/dev/null) is read up to the limit; a folder, FIFO or
// socket is refused without waiting on it.
Result<std::string> ReadWholeFile(const std::filesystem::path& path, int64_t max_bytes);
// The same for an open file; one that grows while it is read is an error too. `shown` names it.
Result<std::string> ReadWholeFd(int fd, std::string_view shown, int64_t max_bytes);
// "regular file", "folder", "symbolic link", "FIFO", "character device", ... for messages.
std::string_view FileKindName(unsigned mode);
// Reads up to `length` bytes at `offset` of an open file (fewer only at its end); errors name `path`.
Result<std::string> ReadFileRange(int fd, const std::filesystem::path& path, int64_t offset, int64_t length);

// Closes a file descriptor when it goes out of scope.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd();
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ScopedFd& operator=(ScopedFd&& other) noexcept;
  int get() const { return fd_; }
  // Hands the descriptor to the caller, who closes it; this one holds none afterwards.
  int Release() { const int fd = fd_; fd_ = -1; return fd; }

 private:
  int fd_;
};
// Writes `data` to `path` (created/truncated) and fsyncs it.
Status WriteFileSynced(const std::filesystem::path& path, std::string_view data);
// The same for `name` inside the open folder `dir_fd` (a new file: an existing name, or a symlink
// planted there, is an error). `shown` names it in errors.
Status WriteNewFileSyncedAt(int dir_fd, const std::string& name, std::string_view data, std::string_view shown);
// Copies `from` to `to` (created/truncated with `mode`, before the umask) and fsyncs it.
Status CopyFileSynced(const std::filesystem::path& from, const std::filesystem::path& to, int mode = 0644);
// Copies the open file `in` (from its current offset) into the new file `name` inside `dir_fd`
// (created with `mode`) and fsyncs it. More than `max_bytes` is an error, noticed before the copy
// goes past them. `from_shown` and `to_shown` name the two files in errors.
Status CopyFdSynced(int in, std::string_view from_shown, int dir_fd, const std::string& name,
                    std::string_view to_shown, int mode, int64_t max_bytes);
// The same without the fsync: for a scratch copy that a crash may leave torn (read back only by this
// process, or made durable by whoever keeps it).
Status CopyFdUnsynced(int in, std::string_view from_shown, int dir_fd, const std::string& name,
                      std::string_view to_shown, int mode, int64_t max_bytes);
// fsync of a directory makes a rename or link inside it durable.
// fsync of a file makes its bytes durable.
Status FsyncFile(const std::filesystem::path& path);
// Asks the kernel to start writing the file's dirty pages to disk now, without waiting (a later
// fsync then has less left to wait for). A hint: a file that cannot be opened is left as it is.
void StartWriteback(const std::filesystem::path& path);

// The permission bits open(2) gives a new file asked for `mode` (`mode` less the process umask, read
// from /proc/self/status without changing it; 022 assumed where that line is missing).
int NewFileMode(int mode);
Status FsyncDirectory(const std::filesystem::path& dir);
Status CreateDirectories(const std::filesystem::path& dir);
// Like CreateDirectories, but every folder it creates is 0700 (existing ones are left as they are):
// local copies of shards (the reader's cache, downloads, build folders) are for this user only.
Status CreatePrivateDirectories(const std::filesystem::path& dir);
// A unique hidden sibling name for staging writes: "<dir>/.<name>.tmp.<random>".
std::filesystem::path TempSiblingPath(const std::filesystem::path& path);

}  // namespace shardvec
