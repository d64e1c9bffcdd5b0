#include "common/file_util.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
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

Result<std::string> ReadWholeFile(const std::filesystem::path& path) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus("open", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat", path, errno);
  if (S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("'{}' is a directory, not a file", path.string()));
  }
  return ReadFileRange(fd.get(), path, 0, st.st_size);
}

Status WriteFileSynced(const std::filesystem::path& path, std::string_view data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("create", path, errno);
  Status st = WriteAll(fd, data.data(), data.size(), path);
  if (st.ok() && ::fsync(fd) != 0) st = ErrnoStatus("fsync", path, errno);
  ::close(fd);
  return st;
}

Status CopyFileSynced(const std::filesystem::path& from, const std::filesystem::path& to, int mode) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoStatus("open", from, errno);
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode));
  if (out < 0) {
    const int err = errno;
    ::close(in);
    return ErrnoStatus("create", to, err);
  }
  Status st;
  std::vector<char> buf(4 << 20);
  for (;;) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      st = ErrnoStatus("read", from, errno);
      break;
    }
    if (n == 0) break;
    st = WriteAll(out, buf.data(), static_cast<size_t>(n), to);
    if (!st.ok()) break;
  }
  if (st.ok() && ::fsync(out) != 0) st = ErrnoStatus("fsync", to, errno);
  ::close(in);
  ::close(out);
  return st;
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

Status FsyncFile(const std::filesystem::path& path) { return FsyncPath(path, O_RDONLY, "file"); }

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
