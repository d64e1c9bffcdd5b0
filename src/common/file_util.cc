#include "common/file_util.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common/random_id.h"
#include "common/status_macros.h"

namespace shardvec {
namespace {

Status ErrnoStatus(std::string_view what, const std::filesystem::path& path, int err) {
  std::string msg = fmt::format("cannot {} '{}': {}", what, path.string(), std::strerror(err));
  if (err == ENOENT) return Status::NotFound(std::move(msg));
  return Status::IOError(std::move(msg));
}

Status WriteAll(int fd, const char* data, size_t size, const std::filesystem::path& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", path, errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::OK();
}

}  // namespace

ScopedFd::~ScopedFd() {
  if (fd_ >= 0) ::close(fd_);
}

ScopedFd& ScopedFd::operator=(ScopedFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

Result<std::string> ReadFileRange(int fd, const std::filesystem::path& path, int64_t offset, int64_t length) {
  std::string data(static_cast<size_t>(std::max<int64_t>(0, length)), '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::pread(fd, data.data() + got, data.size() - got, offset + static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", path, errno);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  return data;
}

std::string_view FileKindName(unsigned mode) {
  if (S_ISREG(mode)) return "regular file";
  if (S_ISDIR(mode)) return "folder";
  if (S_ISLNK(mode)) return "symbolic link";
  if (S_ISFIFO(mode)) return "FIFO";
  if (S_ISCHR(mode)) return "character device";
  if (S_ISBLK(mode)) return "block device";
  if (S_ISSOCK(mode)) return "socket";
  return "special file";
}

Result<std::string> ReadWholeFd(int fd, std::string_view shown, int64_t max_bytes) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus("stat", std::string(shown), errno);
  if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("'{}' is a {}, not a regular file", shown, FileKindName(st.st_mode)));
  }
  const int64_t declared = S_ISREG(st.st_mode) ? static_cast<int64_t>(st.st_size) : 0;
  if (declared > max_bytes) {
    return Status::InvalidArgument(
        fmt::format("'{}' is {} bytes, more than the limit of {} bytes", shown, declared, max_bytes));
  }
  // The declared size and one byte more (which shows a file that grew), then small steps up to one
  // byte past the limit for a device that declares no size.
  std::string data;
  for (;;) {
    const int64_t have = static_cast<int64_t>(data.size());
    const int64_t step = std::min<int64_t>(have < declared ? declared - have + 1 : 64 << 10, max_bytes + 1 - have);
    data.resize(static_cast<size_t>(have + step));
    ssize_t n;
    do {
      n = ::read(fd, data.data() + have, static_cast<size_t>(step));
    } while (n < 0 && errno == EINTR);
    if (n < 0) return ErrnoStatus("read", std::string(shown), errno);
    data.resize(static_cast<size_t>(have + n));
    if (n == 0) break;
    if (static_cast<int64_t>(data.size()) > max_bytes) {
      return Status::InvalidArgument(
          fmt::format("'{}' holds more than the limit of {} bytes", shown, max_bytes));
    }
    if (S_ISREG(st.st_mode) && static_cast<int64_t>(data.size()) > declared) {
      return Status::IOError(fmt::format("'{}' grew while it was read; read it again", shown));
    }
  }
  return data;
}

Result<std::string> ReadWholeFile(const std::filesystem::path& path, int64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (ReadWholeFd then refuses it).
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return ErrnoStatus("open", path, errno);
  return ReadWholeFd(fd.get(), path.string(), max_bytes);
}

namespace {

Status WriteSyncedToFd(int fd, std::string_view data, const std::filesystem::path& shown) {
  Status st = WriteAll(fd, data.data(), data.size(), shown);
  if (st.ok() && ::fsync(fd) != 0) st = ErrnoStatus("fsync", shown, errno);
  ::close(fd);
  return st;
}

}  // namespace

Status WriteFileSynced(const std::filesystem::path& path, std::string_view data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("create", path, errno);
  return WriteSyncedToFd(fd, data, path);
}

Status WriteNewFileSyncedAt(int dir_fd, const std::string& name, std::string_view data, std::string_view shown) {
  const int fd = ::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("create", std::string(shown), errno);
  return WriteSyncedToFd(fd, data, std::string(shown));
}

namespace {

Status CopyFd(int in, std::string_view from_shown, int dir_fd, const std::string& name, std::string_view to_shown,
              int mode, int64_t max_bytes, bool durable) {
  const std::filesystem::path from(from_shown), to(to_shown);
  const auto sync = [&](int fd) { return !durable || ::fsync(fd) == 0 ? Status::OK() : ErrnoStatus("fsync", to, errno); };
  ScopedFd out(::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                        static_cast<mode_t>(mode)));
  if (out.get() < 0) return ErrnoStatus("create", to, errno);
  int64_t copied = 0;
  // A regular file is cloned where the file system shares extents (XFS, Btrfs: no bytes copied), else
  // copied in the kernel while it can be (no copy through user space); anything else, or a file
  // system that offers neither, by read/write.
  struct stat info {};
  const bool regular = ::fstat(in, &info) == 0 && S_ISREG(info.st_mode);
  if (regular && info.st_size <= max_bytes && ::ioctl(out.get(), FICLONE, in) == 0) {
    return sync(out.get());
  }
  for (; regular;) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(int64_t{1} << 30, max_bytes - copied + 1));
    const ssize_t n = ::copy_file_range(in, nullptr, out.get(), nullptr, want, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (copied > 0 || (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)) {
        return ErrnoStatus("copy", from, errno);
      }
      break;  // not offered for these files: read/write below
    }
    if (n == 0) return sync(out.get());
    copied += n;
    if (copied > max_bytes) {
      return Status::Corruption(
          fmt::format("'{}' holds more than the {} bytes expected; not copied", from_shown, max_bytes));
    }
  }
  std::vector<char> buf(4 << 20);
  for (;;) {
    // Never more than one byte past the bound: that byte proves the source is too large.
    const size_t want = static_cast<size_t>(std::min<int64_t>(buf.size(), max_bytes - copied + 1));
    const ssize_t n = ::read(in, buf.data(), want);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", from, errno);
    }
    if (n == 0) break;
    if (copied + n > max_bytes) {
      return Status::Corruption(
          fmt::format("'{}' holds more than the {} bytes expected; not copied", from_shown, max_bytes));
    }
    RETURN_IF_ERROR(WriteAll(out.get(), buf.data(), static_cast<size_t>(n), to));
    copied += n;
  }
  return sync(out.get());
}

}  // namespace

Status CopyFdSynced(int in, std::string_view from_shown, int dir_fd, const std::string& name,
                    std::string_view to_shown, int mode, int64_t max_bytes) {
  return CopyFd(in, from_shown, dir_fd, name, to_shown, mode, max_bytes, /*durable=*/true);
}

Status CopyFdUnsynced(int in, std::string_view from_shown, int dir_fd, const std::string& name,
                      std::string_view to_shown, int mode, int64_t max_bytes) {
  return CopyFd(in, from_shown, dir_fd, name, to_shown, mode, max_bytes, /*durable=*/false);
}

Status CopyFileSynced(const std::filesystem::path& from, const std::filesystem::path& to, int mode) {
  ScopedFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return ErrnoStatus("open", from, errno);
  return CopyFdSynced(in.get(), from.string(), AT_FDCWD, to.string(), to.string(), mode,
                      std::numeric_limits<int64_t>::max() - 1);
}

namespace {

Status FsyncPath(const std::filesystem::path& path, int open_flags, std::string_view what) {
  const int fd = ::open(path.c_str(), open_flags | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(fmt::format("open {}", what), path, errno);
  Status st;
  if (::fsync(fd) != 0) st = ErrnoStatus(fmt::format("fsync {}", what), path, errno);
  ::close(fd);
  return st;
}

}  // namespace

void StartWriteback(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  ::close(fd);
}

Status FsyncFile(const std::filesystem::path& path) { return FsyncPath(path, O_RDONLY, "file"); }

int NewFileMode(int mode) {
  int umask = 022;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("Umask:")) {
      umask = static_cast<int>(std::strtol(line.c_str() + 6, nullptr, 8));
      break;
    }
  }
  return mode & ~umask & 07777;
}

Status FsyncDirectory(const std::filesystem::path& dir) {
  return FsyncPath(dir, O_RDONLY | O_DIRECTORY, "directory");
}

Status CreateDirectories(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status::IOError(fmt::format("cannot create directory '{}': {}", dir.string(), ec.message()));
  }
  return Status::OK();
}

Status CreatePrivateDirectories(const std::filesystem::path& dir) {
  std::error_code ec;
  if (dir.empty() || std::filesystem::is_directory(dir, ec)) return Status::OK();
  for (int attempt = 1;; ++attempt) {
    RETURN_IF_ERROR(CreatePrivateDirectories(dir.parent_path()));
    if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return Status::OK();
    // ENOENT: a concurrent task removed the parent it had left empty (a shard attempt's cleanup
    // prunes its db= folder) between the two calls; make it again.
    if (errno != ENOENT || attempt == 5) return ErrnoStatus("create directory", dir, errno);
  }
}

std::filesystem::path TempSiblingPath(const std::filesystem::path& path) {
  return path.parent_path() /
         fmt::format(".{}.tmp.{}", path.filename().string(), NewUuidHex().substr(0, 12));
}

}  // namespace shardvec
