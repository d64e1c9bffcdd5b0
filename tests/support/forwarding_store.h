// An ObjectStore that forwards every call to another one: the base of the tests' store wrappers,
// which override only the calls they watch or change.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "shardvec/object_store.h"

namespace shardvec::testing {

class ForwardingStore : public ObjectStore {
 public:
  explicit ForwardingStore(std::shared_ptr<ObjectStore> inner) : inner_(std::move(inner)) {}

  std::string Url(std::string_view key) const override { return inner_->Url(key); }
  std::string PrefixUrl() const override { return inner_->PrefixUrl(); }
  using ObjectStore::Get;
  using ObjectStore::GetVersioned;
  Result<std::string> Get(std::string_view key, int64_t max_bytes) override { return inner_->Get(key, max_bytes); }
  Result<std::string> GetRange(std::string_view key, int64_t offset, int64_t length) override {
    return inner_->GetRange(key, offset, length);
  }
  Result<VersionedObject> GetVersioned(std::string_view key, int64_t max_bytes) override {
    return inner_->GetVersioned(key, max_bytes);
  }
  Result<ObjectInfo> Head(std::string_view key) override { return inner_->Head(key); }
  Status GetToFile(std::string_view key, const std::filesystem::path& dest, int64_t max_bytes) override {
    return inner_->GetToFile(key, dest, max_bytes);
  }
  Status GetToScratchFile(std::string_view key, const std::filesystem::path& dest, int64_t max_bytes) override {
    return inner_->GetToScratchFile(key, dest, max_bytes);
  }
  Status Put(std::string_view key, std::string_view data) override { return inner_->Put(key, data); }
  Status PutFile(std::string_view key, const std::filesystem::path& source) override {
    return inner_->PutFile(key, source);
  }
  Status PutIfAbsent(std::string_view key, std::string_view data) override { return inner_->PutIfAbsent(key, data); }
  Result<std::string> CompareAndSwap(std::string_view key, std::string_view data,
                                     const std::optional<std::string>& expected_version) override {
    return inner_->CompareAndSwap(key, data, expected_version);
  }
  Result<ListResult> List(std::string_view prefix, std::string_view delimiter) override {
    return inner_->List(prefix, delimiter);
  }
  Status Delete(std::string_view key) override { return inner_->Delete(key); }
  Status DeleteMany(const std::vector<std::string>& keys) override { return inner_->DeleteMany(keys); }
  Result<std::vector<StagedObject>> ListStaged() override { return inner_->ListStaged(); }

 protected:
  ObjectStore& inner() { return *inner_; }

 private:
  std::shared_ptr<ObjectStore> inner_;
};

}  // namespace shardvec::testing
