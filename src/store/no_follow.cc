#include "store/no_follow.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace shardvec {
namespace {

Status ErrnoError(std::string_view what, std::string_view shown, int err) {
  std::string msg = fmt::format("cannot {} '{}': {}", what, shown, std::strerror(err));
  return err == ENOENT ? Status::NotFound(std::move(msg)) : Status::IOError(std::move(msg));
}

Status WrongKind(std::string_view shown, mode_t mode, std::string_view wanted) {
  return Status::Corruption(fmt::format("'{}' is a {}, not a {} (a folder store never follows symlinks or "
                                        "opens special files)",
                                        shown, FileKindName(mode), wanted));
}

}  // namespace

Result<struct stat> StatNoFollow(int dir_fd, const std::string& name, std::string_view shown) {
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return ErrnoError("stat", shown, errno);
  return st;
}

namespace {

Result<ScopedFd> WalkFolders(int base_fd, const std::vector<std::string>& parts, bool create,
                             std::string_view shown_base) {
  ScopedFd current(::dup(base_fd));
  if (current.get() < 0) return ErrnoError("open", shown_base, errno);
  std::string shown(shown_base);
  for (const std::string& part : parts) {
    shown += "/" + part;
    if (create && ::mkdirat(current.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoError("create directory", shown, errno);
    }
    ScopedFd next(::openat(current.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next.get() < 0) {
      const int err = errno;
      if (err == ELOOP || err == ENOTDIR) {
        auto st = StatNoFollow(current.get(), part, shown);
        if (st.ok()) return WrongKind(shown, st->st_mode, "folder");
      }
      return ErrnoError("open", shown, err);
    }
    current = std::move(next);
  }
  return current;
}

// A delete prunes folders it leaves empty, so one made here can vanish before it is opened (or a
// parent before its child is made): the walk starts again, a bounded number of times.
constexpr int kMaxCreateWalks = 16;

}  // namespace

Result<ScopedFd> OpenFolderBeneath(int base_fd, const std::vector<std::string>& parts, bool create,
                                   std::string_view shown_base) {
  for (int walk = 1;; ++walk) {
    auto folder = WalkFolders(base_fd, parts, create, shown_base);
    if (folder.ok() || !create || walk == kMaxCreateWalks || folder.status().code() != StatusCode::kNotFound) {
      return folder;
    }
  }
}

Result<ScopedFd> OpenRegularFileAt(int dir_fd, const std::string& name, std::string_view shown,
                                   struct stat* info) {
  // lstat first: opening a device can have effects of its own (a tape rewinds), so only a regular
  // file is ever opened; O_NOFOLLOW and the fstat below catch one swapped in meanwhile.
  auto before = StatNoFollow(dir_fd, name, shown);
  if (!before.ok()) return before.status();
  if (!S_ISREG(before->st_mode)) return WrongKind(shown, before->st_mode, "regular file");
  ScopedFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ELOOP) return WrongKind(shown, S_IFLNK, "regular file");
    return ErrnoError("open", shown, err);
  }
  if (::fstat(fd.get(), info) != 0) return ErrnoError("stat", shown, errno);
  if (!S_ISREG(info->st_mode)) return WrongKind(shown, info->st_mode, "regular file");
  return fd;
}

Status ForEachEntry(int dir_fd, std::string_view shown,
                    const std::function<Status(const std::string&, const struct stat&)>& visit) {
  const int own = ::dup(dir_fd);  // closedir closes it
  if (own < 0) return ErrnoError("list", shown, errno);
  DIR* dir = ::fdopendir(own);
  if (dir == nullptr) {
    const int err = errno;
    ::close(own);
    return ErrnoError("list", shown, err);
  }
  ::rewinddir(dir);
  Status result;
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(dir);
    if (entry == nullptr) {
      if (errno != 0) result = ErrnoError("list", shown, errno);
      break;
    }
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    auto st = StatNoFollow(dir_fd, name, fmt::format("{}/{}", shown, name));
    if (!st.ok()) {
      if (st.status().code() == StatusCode::kNotFound) continue;  // removed meanwhile
      result = st.status();
      break;
    }
    result = visit(name, *st);
    if (!result.ok()) break;
  }
  ::closedir(dir);
  return result;
}

}  // namespace shardvec
