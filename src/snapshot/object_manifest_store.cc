// The object-store layout of shardvec/manifest_store.h: manifests under
// manifests/<timestamp>_run_id=<run>/manifest (put-if-absent) and the pointer at current_pointer_key
// (default _CURRENT), moved by compare-and-swap (docs/publish-protocol.md).
#include <fmt/format.h>

#include <optional>

#include "common/log.h"
#include "common/url_redact.h"
#include "common/status_macros.h"
#include "format/keys.h"
#include "shardvec/manifest_store.h"
#include "snapshot/history.h"
#include "snapshot/publisher.h"

namespace shardvec {
namespace {

constexpr int kMaxSetAttempts = 8;

// The pointer key must be a plain relative key outside the layout's own folders.
Status CheckPointerKey(const std::string& key) {
  auto invalid = [&](std::string_view why) {
    return Status::InvalidArgument(fmt::format("current_pointer_key '{}' {}", key, why));
  };
  if (key.empty()) return invalid("must not be empty");
  if (key.front() == '/' || key.back() == '/') return invalid("must not start or end with '/'");
  if (key.find("//") != std::string::npos) return invalid("must not contain empty segments");
  for (std::string_view segment : {std::string_view("."), std::string_view("..")}) {
    const std::string s(segment);
    if (key == s || key.rfind(s + "/", 0) == 0 || key.find("/" + s + "/") != std::string::npos ||
        (key.size() > s.size() && key.compare(key.size() - s.size() - 1, s.size() + 1, "/" + s) == 0)) {
      return invalid("must not contain '.' or '..' segments");
    }
  }
  for (std::string_view top : {kManifestsPrefix, kRunsPrefix, kVectorMetaPrefix, std::string_view("shards/"),
                               std::string_view("_shardvec/")}) {
    if (key.rfind(top, 0) == 0) return invalid(fmt::format("must not be under the layout's folder '{}'", top));
  }
  return Status::OK();
}

class ObjectManifestStore final : public ManifestStore {
 public:
  ObjectManifestStore(std::shared_ptr<ObjectStore> objects, ObjectManifestStoreOptions options)
      : objects_(std::move(objects)),
        key_(std::move(options.current_pointer_key)),
        key_status_(CheckPointerKey(key_)) {}

  Result<ManifestRef> Publish(const Manifest& manifest, const PublishGuard& guard) override {
    RETURN_IF_ERROR(key_status_);
    ASSIGN_OR_RETURN(PublishResult published,
                     PublishSnapshot(*objects_, manifest, guard.run_started, guard.policy, key_));
    const auto dir = ParseManifestRef(published.manifest_key);
    return ManifestRef{published.manifest_ref, manifest.run_id, dir ? dir->timestamp : std::string()};
  }

  Result<std::optional<ManifestRef>> LoadCurrent() override {
    RETURN_IF_ERROR(key_status_);
    auto bytes = objects_->Get(key_, kMaxCurrentPointerBytes);
    if (!bytes.ok()) {
      if (bytes.status().code() == StatusCode::kNotFound) return std::optional<ManifestRef>();
      // Too large, a symlink or a FIFO: as bad as a pointer that does not parse.
      if (bytes.status().code() == StatusCode::kCorruption) {
        return Status::Corruption("CURRENT pointer validation failed: " + bytes.status().message())
            .WithKind(ErrorKind::kManifestParse);
      }
      return bytes.status();
    }
    ASSIGN_OR_RETURN(CurrentPointer pointer, ParseCurrentPointer(*bytes));
    return std::optional<ManifestRef>(
        ManifestRef{std::move(pointer.manifest_ref), std::move(pointer.run_id), std::move(pointer.updated_at)});
  }

  Result<Manifest> LoadManifest(const std::string& ref) override {
    auto key = KeyFromUrl(objects_->PrefixUrl(), ref);
    if (!key.ok()) {
      ASSIGN_OR_RETURN(std::optional<Manifest> moved, LoadMovedManifest(ref));
      if (moved) return std::move(*moved);
      return key.status().WithContext("manifest_ref").WithKindIf(StatusCode::kCorruption, ErrorKind::kManifestParse);
    }
    return ReadManifest(*objects_, *key, ref);
  }

  Result<std::vector<ManifestRef>> ListManifests(int64_t limit) override {
    if (limit < 0) return Status::InvalidArgument(fmt::format("limit must be >= 0 (0 lists all; got {})", limit));
    ASSIGN_OR_RETURN(std::vector<ManifestEntry> entries, shardvec::ListManifests(*objects_, limit));
    std::vector<ManifestRef> refs;
    refs.reserve(entries.size());
    for (ManifestEntry& entry : entries) {
      refs.push_back(ManifestRef{std::move(entry.ref), std::move(entry.run_id), std::move(entry.published_at)});
    }
    return refs;
  }

  Status SetCurrent(const std::string& ref, const std::optional<ManifestRef>& expected) override {
    RETURN_IF_ERROR(key_status_);
    auto key = KeyFromUrl(objects_->PrefixUrl(), ref);
    if (!key.ok()) return Status::InvalidArgument(fmt::format("ref: {}", key.status().message()));
    const auto dir = ParseManifestRef(*key);
    if (!dir || *key != ManifestKey(dir->timestamp, dir->run_id)) {
      return Status::InvalidArgument(fmt::format(
          "ref '{}' does not name a manifest (expected manifests/<timestamp>_run_id=<run>/manifest)", ref));
    }
    auto head = objects_->Head(*key);
    if (!head.ok()) {
      if (head.status().code() == StatusCode::kNotFound) {
        return Status::NotFound(fmt::format("ref '{}': no manifest exists there", ref));
      }
      return head.status().WithContext(fmt::format("ref '{}'", ref));
    }
    CurrentPointer next;
    next.manifest_ref = ref;
    next.run_id = dir->run_id;
    for (int attempt = 0; attempt < kMaxSetAttempts; ++attempt) {
      ASSIGN_OR_RETURN(SwapBase base, ReadCurrentForSwap(*objects_, key_));
      if (expected) {
        const std::string now = base.pointer ? base.pointer->manifest_ref : std::string();
        if (now != expected->ref) {
          return Status::Conflict(fmt::format("set_current to '{}': the pointer names '{}', not the expected '{}'",
                                              ref, now, expected->ref));
        }
      }
      next.updated_at = FormatTimestamp(NowUtc());
      auto swapped = objects_->CompareAndSwap(key_, EncodeCurrentPointer(next), base.version);
      if (swapped.ok()) return Status::OK();
      if (swapped.status().code() != StatusCode::kConflict) {
        return swapped.status().WithContext(fmt::format("set_current: writing '{}'", key_));
      }
      if (expected) {
        return Status::Conflict(fmt::format("set_current to '{}' lost a race: the pointer changed while it ran ({})",
                                            ref, swapped.status().message()));
      }
    }
    return Status::Conflict(
        fmt::format("set_current to '{}': the pointer kept changing ({} attempts)", ref, kMaxSetAttempts));
  }

  std::string Describe() const override { return objects_->Url(key_); }

 private:
  // A store moved or copied since the publish: the pointer (and history tools) still name the
  // manifest by its old URL, <old prefix>/manifests/<dir>/manifest. The manifest at that layout key
  // in this store is the one meant when it records <old prefix> as the prefix it was written under
  // (its s3_prefix); nullopt otherwise (the URL stays refused as outside the store). A store that
  // cannot be read is its error.
  Result<std::optional<Manifest>> LoadMovedManifest(const std::string& ref) {
    const std::optional<Manifest> none;
    const auto dir = ParseManifestRef(ref);
    if (!dir) return none;
    const std::string key = ManifestKey(dir->timestamp, dir->run_id);
    const std::string tail = "/" + key;
    if (ref.size() <= tail.size() || ref.compare(ref.size() - tail.size(), tail.size(), tail) != 0) return none;
    const std::string_view written_under(ref.data(), ref.size() - tail.size());
    auto manifest = ReadManifest(*objects_, key, ref);
    if (!manifest.ok()) {
      const StatusCode code = manifest.status().code();
      if (code == StatusCode::kNotFound || code == StatusCode::kCorruption) return none;
      return manifest.status();
    }
    if (TrimTrailingSlashes(manifest->s3_prefix) != written_under) return none;
    return std::optional<Manifest>(std::move(manifest).value());
  }

  std::shared_ptr<ObjectStore> objects_;
  std::string key_;
  Status key_status_;
};

}  // namespace

std::unique_ptr<ManifestStore> MakeObjectManifestStore(std::shared_ptr<ObjectStore> objects,
                                                       const ObjectManifestStoreOptions& options) {
  return std::make_unique<ObjectManifestStore>(std::move(objects), options);
}

std::unique_ptr<ManifestStore> MakeObjectManifestStore(ObjectStore& objects,
                                                       const ObjectManifestStoreOptions& options) {
  // An aliasing pointer that owns nothing.
  return MakeObjectManifestStore(std::shared_ptr<ObjectStore>(std::shared_ptr<ObjectStore>(), &objects), options);
}

Result<std::unique_ptr<ManifestStore>> OpenManifestStore(std::string_view spec,
                                                         std::shared_ptr<ObjectStore> objects) {
  if (spec.empty()) {
    if (!objects) return Status::InvalidArgument("--manifest-store: the object-store layout needs a store");
    return MakeObjectManifestStore(std::move(objects));
  }
  if (spec.rfind("postgresql://", 0) == 0 || spec.rfind("postgres://", 0) == 0) {
    return OpenPostgresManifestStore(spec);
  }
  return Status::InvalidArgument(fmt::format(
      "--manifest-store '{}' is not supported: give nothing (manifests beside the shards) or a "
      "postgresql:// DSN", RedactUrlUserinfo(spec)));
}

}  // namespace shardvec
