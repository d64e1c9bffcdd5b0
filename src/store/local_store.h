// LocalStore: an ObjectStore over a folder. Writes are staged in hidden temp files and renamed into
// place (fsync of file and directory), put-if-absent and file uploads use link() which never replaces, and
// compare-and-swap holds an flock on the key's folder while it checks and renames.
//
// Everything below the root is reached one folder at a time with O_NOFOLLOW (the root itself may be
// a symlink the user chose): a symlink, FIFO, device or folder where an object or a folder of keys
// should be is a Corruption error naming it, never followed, opened or waited on. Listing skips
// such entries and never descends into a symlinked folder; Delete removes only regular files.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/file_util.h"

#include "shardvec/object_store.h"

namespace shardvec {

class LocalStore : public ObjectStore {
 public:
  // `root` must be absolute; it is created on first write.
  explicit LocalStore(std::filesystem::path root);

  std::string Url(std::string_view key) const override;
  std::string PrefixUrl() const override;
  const std::filesystem::path& root() const { return root_; }

  using ObjectStore::Get;
  using ObjectStore::GetVersioned;
  Result<std::string> Get(std::string_view key, int64_t max_bytes) override;
  Result<std::string> GetRange(std::string_view key, int64_t offset, int64_t length) override;
  Result<VersionedObject> GetVersioned(std::string_view key, int64_t max_bytes) override;
  Result<ObjectInfo> Head(std::string_view key) override;
  Status GetToFile(std::string_view key, const std::filesystem::path& dest, int64_t max_bytes) override;
  Status GetToScratchFile(std::string_view key, const std::filesystem::path& dest, int64_t max_bytes) override;
  // The object's regular file opened for reading where it lies (no copy), with the checks every
  // read makes (no symlink followed, nothing but a regular file opened); `info` receives its fstat.
  Result<ScopedFd> OpenForRead(std::string_view key, struct stat* info) const { return OpenObject(key, info); }

  Status Put(std::string_view key, std::string_view data) override;
  Status PutFile(std::string_view key, const std::filesystem::path& source) override;
  Status PutIfAbsent(std::string_view key, std::string_view data) override;
  Result<std::string> CompareAndSwap(std::string_view key, std::string_view data,
                                     const std::optional<std::string>& expected_version) override;

  Result<ListResult> List(std::string_view prefix, std::string_view delimiter) override;
  Status Delete(std::string_view key) override;
  // The ".<name>.tmp.<id>" files TempSiblingPath names (regular files only; symlinks are not followed).
  Result<std::vector<StagedObject>> ListStaged() override;

 private:
  // GetToFile and GetToScratchFile: the file fsynced before it takes its name when `durable`.
  Status Download(std::string_view key, const std::filesystem::path& dest, int64_t max_bytes, bool durable);
  // The folder holding a key, opened beneath the root without following symlinks, and the key's
  // last name in it.
  struct KeyFolder {
    ScopedFd dir;
    std::string name;
  };
  // A key's '/'-separated names; an empty, "." or ".." name is refused.
  Result<std::vector<std::string>> SplitKey(std::string_view key) const;
  Result<ScopedFd> OpenRoot(bool create) const;
  Result<KeyFolder> OpenKeyFolder(std::string_view key, bool create) const;
  // The object's regular file, opened for reading; `info` receives its fstat.
  Result<ScopedFd> OpenObject(std::string_view key, struct stat* info) const;
  // The whole of an opened object of at most `max_bytes`.
  Result<std::string> ReadOpened(std::string_view key, int fd, const struct stat& info, int64_t max_bytes) const;
  // Writes `data` to a new hidden temp file in `folder`, returning its name.
  Result<std::string> Stage(const KeyFolder& folder, std::string_view key, std::string_view data) const;
  // Renames a staged temp file over the key durably.
  Status CommitStaged(const KeyFolder& folder, const std::string& staged, std::string_view key) const;
  // A staged temp file and the open folder it lies in.
  struct StagedFile {
    KeyFolder folder;
    std::string staged;
  };
  // Opens (making it) the key's folder and stages a new temp file there with `write(folder, name)`;
  // tried again (a few times) when a concurrent Delete pruned the folder meanwhile.
  Result<StagedFile> StageWith(std::string_view key,
                               const std::function<Status(const KeyFolder&, const std::string&)>& write) const;
  // StageWith writing `data`: what Put and PutIfAbsent stage.
  Result<StagedFile> StageData(std::string_view key, std::string_view data) const;
  // Links a staged file to its key unless the key exists (then AlreadyExists), and removes the
  // staged name either way.
  Status CommitStagedIfAbsent(const StagedFile& file, std::string_view key) const;

  std::filesystem::path root_;
};

// Turns "file:///abs", "/abs" or "relative/dir" into an absolute, normalised folder path.
Result<std::filesystem::path> LocalPathFromPrefix(std::string_view prefix);

}  // namespace shardvec
