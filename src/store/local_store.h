// LocalStore: an ObjectStore over a folder. Writes are staged in hidden temp files and renamed into
// place (fsync of file and directory), put-if-absent and file uploads use link() which never replaces, and
// compare-and-swap holds an flock on the key's folder while it checks and renames.
#pragma once

#include <filesystem>

#include "shardvec/object_store.h"

namespace shardvec {

class LocalStore : public ObjectStore {
 public:
  // `root` must be absolute; it is created on first write.
  explicit LocalStore(std::filesystem::path root);

  std::string Url(std::string_view key) const override;
  std::string PrefixUrl() const override;
  const std::filesystem::path& root() const { return root_; }

  Result<std::string> Get(std::string_view key) override;
  Result<std::string> GetRange(std::string_view key, int64_t offset, int64_t length) override;
  Result<VersionedObject> GetVersioned(std::string_view key) override;
  Result<ObjectInfo> Head(std::string_view key) override;
  Status GetToFile(std::string_view key, const std::filesystem::path& dest) override;

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
  Result<std::filesystem::path> PathOf(std::string_view key) const;
  // Renames a staged temp file over `dest` durably.
  Status CommitStaged(const std::filesystem::path& staged, const std::filesystem::path& dest);
  // Links a staged temp file (written with status `st`) to `dest` unless `dest` exists (then
  // AlreadyExists naming `key`), and removes the staged name either way.
  Status CommitStagedIfAbsent(const std::filesystem::path& staged, const std::filesystem::path& dest, Status st,
                              std::string_view key);

  std::filesystem::path root_;
};

// Turns "file:///abs", "/abs" or "relative/dir" into an absolute, normalised folder path.
Result<std::filesystem::path> LocalPathFromPrefix(std::string_view prefix);

}  // namespace shardvec
