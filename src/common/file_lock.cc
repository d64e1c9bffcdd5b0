#include "common/file_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace shardvec {
namespace fs = std::filesystem;

namespace {

// Attempts at locking a lock file that keeps being unlinked under us: each retry follows another
// process's completed removal, so a handful is plenty.
constexpr int kLockAttempts = 8;

Status LockError(std::string_view what, const fs::path& path, int err) {
  return Status::IOError(fmt::format("cannot {} lock file '{}': {}", what, path.string(), std::strerror(err)));
}

}  // namespace

Result<std::optional<FileLock>> FileLock::Acquire(const fs::path& path, Mode mode, bool wait) {
  const int operation = (mode == Mode::kExclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  for (int attempt = 0; attempt < kLockAttempts; ++attempt) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return LockError("open", path, errno);
    FileLock lock(path, fd);
    int rc;
    do {
      rc = ::flock(fd, operation);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      if (errno == EWOULDBLOCK) return std::optional<FileLock>();
      return LockError("lock", path, errno);
    }
    struct stat held {}, named {};
    if (::fstat(fd, &held) != 0) return LockError("stat", path, errno);
    if (::stat(path.c_str(), &named) == 0 && named.st_dev == held.st_dev && named.st_ino == held.st_ino) {
      return std::optional<FileLock>(std::move(lock));
    }
  }
  return Status::Unavailable(fmt::format("cannot lock '{}': it was removed and recreated {} times while "
                                         "locking it", path.string(), kLockAttempts));
}

FileLock::FileLock(FileLock&& other) noexcept : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    Release();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileLock::~FileLock() { Release(); }

void FileLock::UnlinkAndRelease() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());
  Release();
}

void FileLock::Release() {
  if (fd_ >= 0) ::close(fd_);  // closing the only descriptor releases the flock
  fd_ = -1;
}

}  // namespace shardvec
