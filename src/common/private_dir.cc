#include "common/private_dir.h"

#include <fmt/format.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/status_macros.h"

namespace shardvec {
namespace fs = std::filesystem;

namespace {

// The home folder: $HOME when absolute, else the password database's entry for this user.
Result<fs::path> HomeFolder() {
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') return fs::path(home);
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(static_cast<size_t>(size > 0 ? size : 16384));
  struct passwd entry {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(::geteuid(), &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr &&
      found->pw_dir != nullptr && found->pw_dir[0] == '/') {
    return fs::path(found->pw_dir);
  }
  return Status::NotFound(fmt::format(
      "cannot find a home folder for uid {} (HOME is unset and the password database has none) for the "
      "default local folder; set XDG_CACHE_HOME or HOME, or pass the folder explicitly", ::geteuid()));
}

}  // namespace

Result<fs::path> DefaultPrivateRoot() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && xdg[0] == '/') {
    return fs::path(xdg) / "shardvec";
  }
  ASSIGN_OR_RETURN(fs::path home, HomeFolder());
  return home / ".cache" / "shardvec";
}

Status EnsurePrivateFolder(const fs::path& dir, std::string_view what) {
  RETURN_IF_ERROR(CreatePrivateDirectories(dir).WithContext(what));
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return Status::IOError(fmt::format("{} '{}': cannot stat: {}", what, dir.string(), std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("{} '{}' is not a directory", what, dir.string()));
  }
  const uid_t me = ::geteuid();
  const bool foreign = st.st_uid != me;
  const bool shared = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
  if (!foreign && !shared) return Status::OK();
  const unsigned mode = static_cast<unsigned>(st.st_mode & 07777);
  std::string why;
  if (foreign) why = fmt::format("it is owned by uid {}, not by this user (uid {})", st.st_uid, me);
  if (shared) {
    why += fmt::format("{}its mode {:04o} lets {} write it", why.empty() ? "" : " and ",
                       mode, (st.st_mode & S_IWOTH) != 0 ? "others" : "its group");
  }
  return Status::InvalidArgument(fmt::format(
      "{} '{}' is not private: {}; shardvec only trusts local files in a folder this user owns and "
      "no one else can write (chmod 700 it if it is yours, or use another folder)",
      what, dir.string(), why));
}

Result<fs::path> EnsureDefaultPrivateFolder(std::initializer_list<std::string_view> subfolders,
                                            std::string_view what) {
  ASSIGN_OR_RETURN(fs::path dir, DefaultPrivateRoot());
  RETURN_IF_ERROR(EnsurePrivateFolder(dir, what));
  for (std::string_view sub : subfolders) {
    dir /= std::string(sub);
    RETURN_IF_ERROR(EnsurePrivateFolder(dir, what));
  }
  return dir;
}

}  // namespace shardvec
