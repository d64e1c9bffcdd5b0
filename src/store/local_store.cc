#include "store/local_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <regex>

#include "common/digest.h"
#include "common/fault_point.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace shardvec {
namespace fs = std::filesystem;

namespace {

// Version tokens are content digests, so a compare-and-swap notices any change of bytes.
std::string VersionOf(std::string_view data) { return Xxh3Digest(data); }

bool IsHiddenStagingName(const std::string& name) { return !name.empty() && name[0] == '.'; }

// An exclusive flock on a folder, held for the lifetime of the object. Locking the folder itself
// leaves no lock file behind in the snapshot layout.
class FileLock {
 public:
  static Result<FileLock> Acquire(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      return Status::IOError(
          fmt::format("cannot open folder to lock '{}': {}", path.string(), std::strerror(errno)));
    }
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Status::IOError(
          fmt::format("cannot lock '{}': {}", path.string(), std::strerror(err)));
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

// Staged copies of `dest` (".<name>.tmp.<id>") are written only under the folder's lock, so any
// present when we hold it belong to a writer that died mid-swap: they are invisible to List and
// readers, and this removes them so a crash leaves nothing behind after the next swap.
void RemoveStaleStagedSwaps(const fs::path& dest) {
  const std::string stem = "." + dest.filename().string() + ".tmp.";
  std::error_code ec;
  for (fs::directory_iterator it(dest.parent_path(), ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind(stem, 0) == 0) {
      std::error_code ignored;  // best effort: a leftover we cannot remove harms nothing
      fs::remove(it->path(), ignored);
    }
  }
}

constexpr int kMaxStageAttempts = 8;

// Creates `staged`'s folder and writes it with `write`. A concurrent Delete prunes folders it leaves
// empty, so the folder may vanish between its creation and the staged file's: that is retried (a
// folder holding the staged file is never empty, so it stays until the object takes its name).
Status StageInFolder(const fs::path& staged, const std::function<Status()>& write) {
  for (int attempt = 1;; ++attempt) {
    Status st = CreateDirectories(staged.parent_path());
    if (st.ok()) st = write();
    std::error_code ec;
    if (st.ok() || attempt == kMaxStageAttempts || fs::exists(staged.parent_path(), ec)) return st;
    ::unlink(staged.c_str());
  }
}

}  // namespace

Result<fs::path> LocalPathFromPrefix(std::string_view prefix) {
  std::string text(prefix);
  if (text.rfind("file://", 0) == 0) {
    text = text.substr(7);
    if (text.empty() || text[0] != '/') {
      return Status::InvalidArgument(fmt::format(
          "store '{}' is not a valid file:// URL; use file:///absolute/path", prefix));
    }
  } else if (text.find("://") != std::string::npos) {
    return Status::InvalidArgument(fmt::format(
        "store '{}' has an unsupported scheme; use a folder path or file:///absolute/path", prefix));
  }
  if (text.empty()) return Status::InvalidArgument("store must not be empty");
  std::error_code ec;
  fs::path path = fs::absolute(fs::path(text), ec);
  if (ec) return Status::InvalidArgument(fmt::format("store '{}': {}", prefix, ec.message()));
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

Result<fs::path> LocalStore::PathOf(std::string_view key) const {
  if (key.empty() || key.front() == '/' || key.find("..") != std::string_view::npos) {
    return Status::InvalidArgument(fmt::format("object key '{}' is not a relative key", key));
  }
  return root_ / fs::path(std::string(key));
}

Result<std::string> LocalStore::Get(std::string_view key) {
  ASSIGN_OR_RETURN(fs::path path, PathOf(key));
  auto data = ReadWholeFile(path);
  if (!data.ok() && data.status().code() == StatusCode::kNotFound) {
    return Status::NotFound(fmt::format("object '{}' does not exist", Url(key)));
  }
  return data;
}

Result<std::string> LocalStore::GetRange(std::string_view key, int64_t offset, int64_t length) {
  ASSIGN_OR_RETURN(fs::path path, PathOf(key));
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::NotFound(fmt::format("object '{}' does not exist", Url(key)));
    return Status::IOError(fmt::format("cannot open '{}': {}", path.string(), std::strerror(errno)));
  }
  return ReadFileRange(fd.get(), path, offset, length);
}

Result<VersionedObject> LocalStore::GetVersioned(std::string_view key) {
  ASSIGN_OR_RETURN(std::string data, Get(key));
  std::string version = VersionOf(data);
  return VersionedObject{std::move(data), std::move(version)};
}

Result<ObjectInfo> LocalStore::Head(std::string_view key) {
  ASSIGN_OR_RETURN(fs::path path, PathOf(key));
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) {
      return Status::NotFound(fmt::format("object '{}' does not exist", Url(key)));
    }
    return Status::IOError(fmt::format("cannot stat '{}': {}", path.string(), ec.message()));
  }
  return ObjectInfo{std::string(key), static_cast<int64_t>(size), ""};
}

Status LocalStore::GetToFile(std::string_view key, const fs::path& dest) {
  ASSIGN_OR_RETURN(fs::path path, PathOf(key));
  if (!fs::exists(path)) return Status::NotFound(fmt::format("object '{}' does not exist", Url(key)));
  // A download is a local copy for this user only (the reader's cache), like S3Store's.
  RETURN_IF_ERROR(CreatePrivateDirectories(dest.parent_path()));
  const fs::path staged = TempSiblingPath(dest);
  Status st = CopyFileSynced(path, staged, 0600);
  if (st.ok() && ::rename(staged.c_str(), dest.c_str()) != 0) {
    st = Status::IOError(fmt::format("cannot rename into '{}': {}", dest.string(), std::strerror(errno)));
  }
  if (!st.ok()) ::unlink(staged.c_str());
  return st;
}

Status LocalStore::CommitStaged(const fs::path& staged, const fs::path& dest) {
  if (::rename(staged.c_str(), dest.c_str()) != 0) {
    const int err = errno;
    ::unlink(staged.c_str());
    return Status::IOError(fmt::format("cannot rename into '{}': {}", dest.string(), std::strerror(err)));
  }
  return FsyncDirectory(dest.parent_path());
}

Status LocalStore::Put(std::string_view key, std::string_view data) {
  ASSIGN_OR_RETURN(fs::path dest, PathOf(key));
  const fs::path staged = TempSiblingPath(dest);
  Status st = StageInFolder(staged, [&] { return WriteFileSynced(staged, data); });
  if (!st.ok()) {
    ::unlink(staged.c_str());
    return st;
  }
  return CommitStaged(staged, dest);
}

Status LocalStore::PutFile(std::string_view key, const fs::path& source) {
  ASSIGN_OR_RETURN(fs::path dest, PathOf(key));
  const fs::path staged = TempSiblingPath(dest);
  // A hard link (same file system) saves copying the bytes; either way they are fsynced before the
  // object takes its name.
  Status st = StageInFolder(staged, [&] {
    return ::link(source.c_str(), staged.c_str()) == 0 ? FsyncFile(staged) : CopyFileSynced(source, staged);
  });
  return CommitStagedIfAbsent(staged, dest, st, key);
}

Status LocalStore::PutIfAbsent(std::string_view key, std::string_view data) {
  ASSIGN_OR_RETURN(fs::path dest, PathOf(key));
  const fs::path staged = TempSiblingPath(dest);
  return CommitStagedIfAbsent(staged, dest, StageInFolder(staged, [&] { return WriteFileSynced(staged, data); }), key);
}

Status LocalStore::CommitStagedIfAbsent(const fs::path& staged, const fs::path& dest, Status st,
                                        std::string_view key) {
  if (st.ok() && ::link(staged.c_str(), dest.c_str()) != 0) {
    // link() never replaces an existing name, which is exactly put-if-absent.
    if (errno == EEXIST) {
      st = Status::AlreadyExists(fmt::format("object '{}' already exists", Url(key)));
    } else {
      st = Status::IOError(fmt::format("cannot link '{}': {}", dest.string(), std::strerror(errno)));
    }
  }
  ::unlink(staged.c_str());
  if (!st.ok()) return st;
  return FsyncDirectory(dest.parent_path());
}

Result<std::string> LocalStore::CompareAndSwap(std::string_view key, std::string_view data,
                                               const std::optional<std::string>& expected_version) {
  ASSIGN_OR_RETURN(fs::path dest, PathOf(key));
  RETURN_IF_ERROR(CreateDirectories(dest.parent_path()));
  ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(dest.parent_path()));

  auto current = ReadWholeFile(dest);
  std::optional<std::string> current_version;
  if (current.ok()) {
    current_version = VersionOf(*current);
  } else if (current.status().code() != StatusCode::kNotFound) {
    return current.status();
  }
  if (current_version != expected_version) {
    return Status::Conflict(fmt::format(
        "compare-and-swap of '{}' lost: expected {}, found {}", Url(key),
        expected_version ? "version " + *expected_version : std::string("no object"),
        current_version ? "version " + *current_version : std::string("no object")));
  }
  RemoveStaleStagedSwaps(dest);
  const fs::path staged = TempSiblingPath(dest);
  Status st = WriteFileSynced(staged, data);
  if (st.ok()) st = FaultPoint(kFaultDuringCurrentSwap);  // staged, not yet renamed into place
  if (!st.ok()) {
    ::unlink(staged.c_str());
    return st;
  }
  RETURN_IF_ERROR(CommitStaged(staged, dest));
  return VersionOf(data);
}

Result<ListResult> LocalStore::List(std::string_view prefix, std::string_view delimiter) {
  ListResult result;
  // Walk from the deepest folder the prefix names fully.
  const std::string prefix_str(prefix);
  const size_t slash = prefix_str.rfind('/');
  const fs::path start = slash == std::string::npos ? root_ : root_ / prefix_str.substr(0, slash);
  std::error_code ec;
  if (!fs::is_directory(start, ec)) return result;

  std::vector<std::string> prefixes;
  fs::recursive_directory_iterator it(start, ec), end;
  if (ec == std::errc::no_such_file_or_directory) return result;  // removed since the check above
  if (ec) return Status::IOError(fmt::format("cannot list '{}': {}", start.string(), ec.message()));
  for (; it != end; it.increment(ec)) {
    if (ec) return Status::IOError(fmt::format("cannot list '{}': {}", start.string(), ec.message()));
    const std::string name = it->path().filename().string();
    std::error_code stat_ec;  // an entry removed since the folder was read is simply not listed
    if (IsHiddenStagingName(name)) {
      if (it->is_directory(stat_ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(stat_ec)) continue;
    const auto size = it->file_size(stat_ec);
    if (stat_ec) continue;
    std::string key = it->path().lexically_relative(root_).generic_string();
    if (key.rfind(prefix_str, 0) != 0) continue;
    const std::string rest = key.substr(prefix_str.size());
    if (!delimiter.empty()) {
      const size_t d = rest.find(delimiter);
      if (d != std::string::npos) {
        prefixes.push_back(prefix_str + rest.substr(0, d + delimiter.size()));
        continue;
      }
    }
    result.objects.push_back(ObjectInfo{key, static_cast<int64_t>(size), ""});
  }
  std::sort(prefixes.begin(), prefixes.end());
  prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
  result.common_prefixes = std::move(prefixes);
  std::sort(result.objects.begin(), result.objects.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return result;
}

namespace {

// Adds the staged temp files under `dir` (and its subfolders, `depth` levels at most) to `out`. A folder
// or file removed while it is walked (a concurrent delete prunes empty folders) is skipped.
Status CollectStaged(const fs::path& root, const fs::path& dir, int depth, std::vector<StagedObject>& out) {
  static const std::regex kStagedName(R"(^\..+\.tmp\.[0-9a-f]{12}$)");
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return Status::OK();
    return Status::IOError(fmt::format("cannot list '{}': {}", dir.string(), ec.message()));
  }
  for (; it != end; it.increment(ec)) {
    if (ec) return Status::IOError(fmt::format("cannot list '{}': {}", dir.string(), ec.message()));
    std::error_code stat_ec;
    const fs::file_status status = it->symlink_status(stat_ec);
    if (stat_ec) continue;
    if (fs::is_directory(status)) {
      if (depth > 0) RETURN_IF_ERROR(CollectStaged(root, it->path(), depth - 1, out));
      continue;
    }
    if (!fs::is_regular_file(status) || !std::regex_match(it->path().filename().string(), kStagedName)) continue;
    const auto size = it->file_size(stat_ec);
    const auto modified = it->last_write_time(stat_ec);
    if (stat_ec) continue;  // renamed into place or removed meanwhile: no leftover
    out.push_back(StagedObject{it->path().lexically_relative(root).generic_string(), static_cast<int64_t>(size),
                               std::chrono::file_clock::to_sys(modified)});
  }
  return Status::OK();
}

constexpr int kMaxStagedDepth = 16;  // the layout is at most 5 folders deep

}  // namespace

Result<std::vector<StagedObject>> LocalStore::ListStaged() {
  std::vector<StagedObject> staged;
  RETURN_IF_ERROR(CollectStaged(root_, root_, kMaxStagedDepth, staged));
  std::sort(staged.begin(), staged.end(), [](const StagedObject& a, const StagedObject& b) { return a.key < b.key; });
  return staged;
}

Status LocalStore::Delete(std::string_view key) {
  ASSIGN_OR_RETURN(fs::path path, PathOf(key));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::IOError(fmt::format("cannot delete '{}': {}", path.string(), std::strerror(errno)));
  }
  // Prune folders left empty, so deleted runs leave no skeleton behind.
  for (fs::path dir = path.parent_path(); dir != root_ && dir.string().size() > root_.string().size();
       dir = dir.parent_path()) {
    if (::rmdir(dir.c_str()) != 0) break;
  }
  return Status::OK();
}

}  // namespace shardvec
