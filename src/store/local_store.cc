#include "store/local_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <limits>
#include <regex>

#include "common/digest.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/url_redact.h"
#include "store/no_follow.h"

namespace shardvec {
namespace fs = std::filesystem;

namespace {

// Version tokens are content digests, so a compare-and-swap notices any change of bytes.
std::string VersionOf(std::string_view data) { return Xxh3Digest(data); }

bool IsHiddenStagingName(const std::string& name) { return !name.empty() && name[0] == '.'; }

Status ErrnoError(std::string_view what, std::string_view shown, int err) {
  return Status::IOError(fmt::format("cannot {} '{}': {}", what, shown, std::strerror(err)));
}

// An exclusive flock on an open folder, held until `folder` is closed. Locking the folder itself
// leaves no lock file behind in the snapshot layout.
Status LockFolder(int folder, std::string_view shown) {
  while (::flock(folder, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    return ErrnoError("lock", shown, errno);
  }
  return Status::OK();
}

// Staged copies of a key (".<name>.tmp.<id>") are written only under the folder's lock, so any
// present when we hold it belong to a writer that died mid-swap: they are invisible to List and
// readers, and this removes them so a crash leaves nothing behind after the next swap.
void RemoveStaleStagedSwaps(int folder, const std::string& name, std::string_view shown) {
  const std::string stem = "." + name + ".tmp.";
  // Best effort: a leftover we cannot remove harms nothing.
  (void)ForEachEntry(folder, shown, [&](const std::string& entry, const struct stat& st) {
    if (entry.rfind(stem, 0) == 0 && S_ISREG(st.st_mode)) ::unlinkat(folder, entry.c_str(), 0);
    return Status::OK();
  });
}

// A concurrent Delete prunes folders it leaves empty: a folder removed so has no links left, and no
// file can be created in it any more.
bool FolderRemoved(int dir_fd) {
  struct stat info {};
  return ::fstat(dir_fd, &info) == 0 && info.st_nlink == 0;
}

constexpr int kMaxStageAttempts = 8;

}  // namespace

Result<fs::path> LocalPathFromPrefix(std::string_view prefix) {
  std::string text(prefix);
  const std::string shown = RedactUrlUserinfo(prefix);
  if (text.rfind("file://", 0) == 0) {
    text = text.substr(7);
    if (text.empty() || text[0] != '/') {
      return Status::InvalidArgument(fmt::format(
          "store '{}' is not a valid file:// URL; use file:///absolute/path", shown));
    }
  } else if (text.find("://") != std::string::npos) {
    return Status::InvalidArgument(fmt::format(
        "store '{}' has an unsupported scheme; use a folder path or file:///absolute/path", shown));
  }
  if (text.empty()) return Status::InvalidArgument("store must not be empty");
  std::error_code ec;
  fs::path path = fs::absolute(fs::path(text), ec);
  if (ec) return Status::InvalidArgument(fmt::format("store '{}': {}", shown, ec.message()));
  path = path.lexically_normal();
  std::string s = path.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return fs::path(s);
}

LocalStore::LocalStore(fs::path root) : root_(std::move(root)) {}

std::string LocalStore::Url(std::string_view key) const {
  return "file://" + (root_ / fs::path(std::string(key))).string();
}

std::string LocalStore::PrefixUrl() const { return "file://" + root_.string(); }

Result<std::vector<std::string>> LocalStore::SplitKey(std::string_view key) const {
  std::vector<std::string> parts;
  for (size_t begin = 0; begin <= key.size();) {
    const size_t end = std::min(key.find('/', begin), key.size());
    parts.emplace_back(key.substr(begin, end - begin));
    const std::string& part = parts.back();
    if (part.empty() || part == "." || part == "..") {
      return Status::InvalidArgument(
          fmt::format("object key '{}' is not a relative key of non-empty names without '.' or '..'", key));
    }
    begin = end + 1;
  }
  return parts;
}

Result<ScopedFd> LocalStore::OpenRoot(bool create) const {
  if (create) RETURN_IF_ERROR(CreateDirectories(root_));
  ScopedFd fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound(fmt::format("store folder '{}' does not exist", root_.string()));
    return ErrnoError("open store folder", root_.string(), err);
  }
  return fd;
}

Result<LocalStore::KeyFolder> LocalStore::OpenKeyFolder(std::string_view key, bool create) const {
  ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitKey(key));
  std::string name = std::move(parts.back());
  parts.pop_back();
  auto root = OpenRoot(create);
  if (!root.ok()) {
    if (root.status().code() == StatusCode::kNotFound) {
      return Status::NotFound(fmt::format("object '{}' does not exist", Url(key)));
    }
    return root.status();
  }
  auto dir = OpenFolderBeneath(root->get(), parts, create, root_.string());
  if (!dir.ok()) {
    if (dir.status().code() == StatusCode::kNotFound) {
      return Status::NotFound(fmt::format("object '{}' does not exist", Url(key)));
    }
    return dir.status().WithContext(fmt::format("object '{}'", Url(key)));
  }
  return KeyFolder{std::move(dir).value(), std::move(name)};
}

Result<ScopedFd> LocalStore::OpenObject(std::string_view key, struct stat* info) const {
  ASSIGN_OR_RETURN(KeyFolder folder, OpenKeyFolder(key, /*create=*/false));
  auto fd = OpenRegularFileAt(folder.dir.get(), folder.name, Url(key), info);
  if (!fd.ok() && fd.status().code() == StatusCode::kNotFound) {
    return Status::NotFound(fmt::format("object '{}' does not exist", Url(key)));
  }
  return fd;
}

Result<std::string> LocalStore::Get(std::string_view key, int64_t max_bytes) {
  struct stat info {};
  ASSIGN_OR_RETURN(ScopedFd fd, OpenObject(key, &info));
  return ReadOpened(key, fd.get(), info, max_bytes);
}

Result<std::string> LocalStore::ReadOpened(std::string_view key, int fd, const struct stat& info,
                                           int64_t max_bytes) const {
  if (info.st_size > max_bytes) return TooLarge(key, info.st_size, max_bytes);
  auto data = ReadWholeFd(fd, Url(key), max_bytes);
  // Grown past the bound while read: the store's bytes are wrong, not the caller's arguments.
  if (!data.ok() && data.status().code() == StatusCode::kInvalidArgument) {
    return Status::Corruption(data.status().message());
  }
  return data;
}

Result<std::string> LocalStore::GetRange(std::string_view key, int64_t offset, int64_t length) {
  if (offset < 0 || length < 0) {
    return Status::InvalidArgument(fmt::format("range of '{}' must be non-negative (offset {}, length {})",
                                               Url(key), offset, length));
  }
  struct stat info {};
  ASSIGN_OR_RETURN(ScopedFd fd, OpenObject(key, &info));
  // Never more than the file holds, whatever length the caller names.
  const int64_t available = std::max<int64_t>(0, info.st_size - offset);
  return ReadFileRange(fd.get(), Url(key), offset, std::min(length, available));
}

Result<VersionedObject> LocalStore::GetVersioned(std::string_view key, int64_t max_bytes) {
  ASSIGN_OR_RETURN(std::string data, Get(key, max_bytes));
  std::string version = VersionOf(data);
  return VersionedObject{std::move(data), std::move(version)};
}

Result<ObjectInfo> LocalStore::Head(std::string_view key) {
  struct stat info {};
  ASSIGN_OR_RETURN(ScopedFd fd, OpenObject(key, &info));
  return ObjectInfo{std::string(key), static_cast<int64_t>(info.st_size), ""};
}

Status LocalStore::GetToFile(std::string_view key, const fs::path& dest, int64_t max_bytes) {
  return Download(key, dest, max_bytes, /*durable=*/true);
}

Status LocalStore::GetToScratchFile(std::string_view key, const fs::path& dest, int64_t max_bytes) {
  return Download(key, dest, max_bytes, /*durable=*/false);
}

Status LocalStore::Download(std::string_view key, const fs::path& dest, int64_t max_bytes, bool durable) {
  struct stat info {};
  ASSIGN_OR_RETURN(ScopedFd fd, OpenObject(key, &info));
  if (info.st_size > max_bytes) return TooLarge(key, info.st_size, max_bytes);
  // A download is a local copy for this user only (the reader's cache), like S3Store's.
  RETURN_IF_ERROR(CreatePrivateDirectories(dest.parent_path()));
  const fs::path staged = TempSiblingPath(dest);
  Status st = (durable ? CopyFdSynced : CopyFdUnsynced)(fd.get(), Url(key), AT_FDCWD, staged.string(), staged.string(),
                                                        0600, max_bytes);
  if (st.ok() && ::rename(staged.c_str(), dest.c_str()) != 0) {
    st = Status::IOError(fmt::format("cannot rename into '{}': {}", dest.string(), std::strerror(errno)));
  }
  if (!st.ok()) ::unlink(staged.c_str());
  return st;
}

Result<std::string> LocalStore::Stage(const KeyFolder& folder, std::string_view key, std::string_view data) const {
  const std::string staged = TempSiblingPath(folder.name).filename().string();
  Status st = WriteNewFileSyncedAt(folder.dir.get(), staged, data, Url(key) + " (staged)");
  if (!st.ok()) {
    ::unlinkat(folder.dir.get(), staged.c_str(), 0);
    return st;
  }
  return staged;
}

Result<LocalStore::StagedFile> LocalStore::StageWith(
    std::string_view key, const std::function<Status(const KeyFolder&, const std::string&)>& write) const {
  for (int attempt = 1;; ++attempt) {
    ASSIGN_OR_RETURN(KeyFolder folder, OpenKeyFolder(key, /*create=*/true));
    const std::string staged = TempSiblingPath(folder.name).filename().string();
    Status st = write(folder, staged);
    if (st.ok()) return StagedFile{std::move(folder), staged};
    ::unlinkat(folder.dir.get(), staged.c_str(), 0);
    // The folder was pruned between its creation and the staged file's: make it again.
    if (attempt == kMaxStageAttempts || !FolderRemoved(folder.dir.get())) return st;
  }
}

Status LocalStore::CommitStagedIfAbsent(const StagedFile& file, std::string_view key) const {
  const int dir = file.folder.dir.get();
  Status st;
  // link() never replaces an existing name (nor follows a symlink there), which is exactly put-if-absent.
  if (::linkat(dir, file.staged.c_str(), dir, file.folder.name.c_str(), 0) != 0) {
    st = errno == EEXIST ? Status::AlreadyExists(fmt::format("object '{}' already exists", Url(key)))
                         : ErrnoError("link", Url(key), errno);
  }
  ::unlinkat(dir, file.staged.c_str(), 0);
  if (!st.ok()) return st;
  if (::fsync(dir) != 0) return ErrnoError("fsync the folder of", Url(key), errno);
  return Status::OK();
}

Status LocalStore::CommitStaged(const KeyFolder& folder, const std::string& staged, std::string_view key) const {
  if (::renameat(folder.dir.get(), staged.c_str(), folder.dir.get(), folder.name.c_str()) != 0) {
    const int err = errno;
    ::unlinkat(folder.dir.get(), staged.c_str(), 0);
    return ErrnoError("rename into", Url(key), err);
  }
  if (::fsync(folder.dir.get()) != 0) return ErrnoError("fsync the folder of", Url(key), errno);
  return Status::OK();
}

Result<LocalStore::StagedFile> LocalStore::StageData(std::string_view key, std::string_view data) const {
  return StageWith(key, [&](const KeyFolder& folder, const std::string& staged) {
    return WriteNewFileSyncedAt(folder.dir.get(), staged, data, Url(key) + " (staged)");
  });
}

Status LocalStore::Put(std::string_view key, std::string_view data) {
  ASSIGN_OR_RETURN(StagedFile file, StageData(key, data));
  return CommitStaged(file.folder, file.staged, key);
}

Status LocalStore::PutFile(std::string_view key, const fs::path& source) {
  // A hard link (same file system) saves copying the bytes; either way they are fsynced before the
  // object takes its name, and the name is taken only if it is free.
  ASSIGN_OR_RETURN(StagedFile file, StageWith(key, [&](const KeyFolder& folder, const std::string& staged) {
    if (::linkat(AT_FDCWD, source.c_str(), folder.dir.get(), staged.c_str(), 0) == 0) return FsyncFile(source);
    ScopedFd in(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
    if (in.get() < 0) return ErrnoError("open", source.string(), errno);
    return CopyFdSynced(in.get(), source.string(), folder.dir.get(), staged, Url(key) + " (staged)", 0644,
                        std::numeric_limits<int64_t>::max() - 1);
  }));
  return CommitStagedIfAbsent(file, key);
}

Status LocalStore::PutIfAbsent(std::string_view key, std::string_view data) {
  ASSIGN_OR_RETURN(StagedFile file, StageData(key, data));
  return CommitStagedIfAbsent(file, key);
}

Result<std::string> LocalStore::CompareAndSwap(std::string_view key, std::string_view data,
                                               const std::optional<std::string>& expected_version) {
  ASSIGN_OR_RETURN(KeyFolder folder, OpenKeyFolder(key, /*create=*/true));
  RETURN_IF_ERROR(LockFolder(folder.dir.get(), Url(key)));

  std::optional<std::string> current_version;
  struct stat info {};
  auto current = OpenRegularFileAt(folder.dir.get(), folder.name, Url(key), &info);
  if (current.ok()) {
    ASSIGN_OR_RETURN(std::string bytes, ReadOpened(key, current->get(), info, kMaxMetadataObjectBytes));
    current_version = VersionOf(bytes);
  } else if (current.status().code() != StatusCode::kNotFound) {
    return current.status();
  }
  if (current_version != expected_version) {
    return Status::Conflict(fmt::format(
        "compare-and-swap of '{}' lost: expected {}, found {}", Url(key),
        expected_version ? "version " + *expected_version : std::string("no object"),
        current_version ? "version " + *current_version : std::string("no object")));
  }
  RemoveStaleStagedSwaps(folder.dir.get(), folder.name, Url(key));
  ASSIGN_OR_RETURN(std::string staged, Stage(folder, key, data));
  RETURN_IF_ERROR(CommitStaged(folder, staged, key));
  return VersionOf(data);
}

Result<ListResult> LocalStore::List(std::string_view prefix, std::string_view delimiter) {
  ListResult result;
  // Walk from the deepest folder the prefix names fully, never through a symlink.
  const std::string prefix_str(prefix);
  const size_t slash = prefix_str.rfind('/');
  std::vector<std::string> start_parts;
  if (slash != std::string::npos) {
    auto parts = SplitKey(std::string_view(prefix_str).substr(0, slash));
    if (!parts.ok()) return result;  // no key can start with such a prefix
    start_parts = std::move(parts).value();
  }
  auto root = OpenRoot(/*create=*/false);
  if (!root.ok()) return root.status().code() == StatusCode::kNotFound ? Result<ListResult>(result) : root.status();
  auto start = OpenFolderBeneath(root->get(), start_parts, /*create=*/false, root_.string());
  if (!start.ok()) {
    // Nothing is listed beneath a missing folder, nor beneath a symlink or file where one should be.
    if (start.status().code() == StatusCode::kNotFound || start.status().code() == StatusCode::kCorruption) {
      return result;
    }
    return start.status();
  }

  std::vector<std::string> prefixes;
  struct Pending {
    ScopedFd dir;
    std::string key_prefix;  // "" or "a/b/"
  };
  std::vector<Pending> pending;
  std::string start_prefix;
  for (const std::string& part : start_parts) start_prefix += part + "/";
  pending.push_back(Pending{std::move(start).value(), start_prefix});
  while (!pending.empty()) {
    Pending folder = std::move(pending.back());
    pending.pop_back();
    const std::string shown = (root_ / folder.key_prefix).string();
    Status st = ForEachEntry(folder.dir.get(), shown, [&](const std::string& name, const struct stat& info) {
      if (IsHiddenStagingName(name)) return Status::OK();
      const std::string key = folder.key_prefix + name;
      if (S_ISDIR(info.st_mode)) {
        // Only folders whose keys can match the prefix are worth entering.
        const std::string dir_key = key + "/";
        if (dir_key.compare(0, std::min(dir_key.size(), prefix_str.size()), prefix_str, 0,
                            std::min(dir_key.size(), prefix_str.size())) != 0) {
          return Status::OK();
        }
        ScopedFd sub(::openat(folder.dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (sub.get() < 0) {
          if (errno == ENOENT) return Status::OK();  // removed since the folder was read
          return ErrnoError("list", shown + "/" + name, errno);
        }
        pending.push_back(Pending{std::move(sub), dir_key});
        return Status::OK();
      }
      // Symlinks, FIFOs and devices are not objects.
      if (!S_ISREG(info.st_mode) || key.rfind(prefix_str, 0) != 0) return Status::OK();
      const std::string rest = key.substr(prefix_str.size());
      if (!delimiter.empty()) {
        const size_t d = rest.find(delimiter);
        if (d != std::string::npos) {
          prefixes.push_back(prefix_str + rest.substr(0, d + delimiter.size()));
          return Status::OK();
        }
      }
      result.objects.push_back(ObjectInfo{key, static_cast<int64_t>(info.st_size), ""});
      return Status::OK();
    });
    if (!st.ok()) return st;
  }
  std::sort(prefixes.begin(), prefixes.end());
  prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
  result.common_prefixes = std::move(prefixes);
  std::sort(result.objects.begin(), result.objects.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return result;
}

namespace {

// Adds the staged temp files (TempSiblingPath's ".<name>.tmp.<12 hex>") beneath the open folder `dir`,
// whose keys start with `key_prefix`, to `out`: `depth` levels of subfolders at most, never through a
// symlink. An entry removed while it is walked (renamed into place, or pruned) is skipped.
Status CollectStaged(int dir, const std::string& key_prefix, const std::string& shown, int depth,
                     std::vector<StagedObject>& out) {
  static const std::regex kStagedName(R"(^\..+\.tmp\.[0-9a-f]{12}$)");
  return ForEachEntry(dir, shown, [&](const std::string& name, const struct stat& info) -> Status {
    if (S_ISDIR(info.st_mode)) {
      if (depth == 0) return Status::OK();
      ScopedFd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.get() < 0) return errno == ENOENT ? Status::OK() : ErrnoError("list", shown + "/" + name, errno);
      return CollectStaged(sub.get(), key_prefix + name + "/", shown + "/" + name, depth - 1, out);
    }
    if (!S_ISREG(info.st_mode) || !std::regex_match(name, kStagedName)) return Status::OK();
    const auto modified = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(info.st_mtim.tv_sec) + std::chrono::nanoseconds(info.st_mtim.tv_nsec)));
    out.push_back(StagedObject{key_prefix + name, static_cast<int64_t>(info.st_size), modified});
    return Status::OK();
  });
}

constexpr int kMaxStagedDepth = 16;  // the layout is at most 5 folders deep

}  // namespace

Result<std::vector<StagedObject>> LocalStore::ListStaged() {
  std::vector<StagedObject> staged;
  auto root = OpenRoot(/*create=*/false);
  if (!root.ok()) return root.status().code() == StatusCode::kNotFound ? Result<std::vector<StagedObject>>(staged) : root.status();
  RETURN_IF_ERROR(CollectStaged(root->get(), "", root_.string(), kMaxStagedDepth, staged));
  std::sort(staged.begin(), staged.end(), [](const StagedObject& a, const StagedObject& b) { return a.key < b.key; });
  return staged;
}

Status LocalStore::Delete(std::string_view key) {
  auto folder = OpenKeyFolder(key, /*create=*/false);
  if (!folder.ok()) return folder.status().code() == StatusCode::kNotFound ? Status::OK() : folder.status();
  auto info = StatNoFollow(folder->dir.get(), folder->name, Url(key));
  if (!info.ok()) return info.status().code() == StatusCode::kNotFound ? Status::OK() : info.status();
  // Only a regular file is an object: a symlink or special file planted here is left for a person.
  if (!S_ISREG(info->st_mode)) {
    return Status::Corruption(fmt::format("object '{}' is a {}, not a regular file; not deleted", Url(key),
                                          FileKindName(info->st_mode)));
  }
  if (::unlinkat(folder->dir.get(), folder->name.c_str(), 0) != 0 && errno != ENOENT) {
    return ErrnoError("delete", Url(key), errno);
  }
  // Prune folders left empty, so deleted runs leave no skeleton behind (rmdir never removes a
  // symlink, and each parent is reached beneath the root again).
  ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitKey(key));
  parts.pop_back();
  auto root = OpenRoot(/*create=*/false);
  while (root.ok() && !parts.empty()) {
    const std::string last = parts.back();
    parts.pop_back();
    auto parent = OpenFolderBeneath(root->get(), parts, /*create=*/false, root_.string());
    if (!parent.ok() || ::unlinkat(parent->get(), last.c_str(), AT_REMOVEDIR) != 0) break;
  }
  return Status::OK();
}

}  // namespace shardvec
