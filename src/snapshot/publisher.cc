#include "snapshot/publisher.h"

#include <fmt/format.h>

#include "common/log.h"
#include "common/status_macros.h"
#include "format/keys.h"

namespace shardvec {
namespace {

constexpr int kMaxSwapAttempts = 8;

// A lost publish: the run's own manifest stays in history, named as the status's subject.
Status PublishConflict(std::string message, const PublishResult& published) {
  return Status::Conflict(std::move(message))
      .WithKind(ErrorKind::kPublishConflict)
      .WithSubject(published.manifest_ref);
}

}  // namespace

Result<std::optional<CurrentState>> ReadCurrent(ObjectStore& store, std::string_view pointer_key) {
  auto object = store.GetVersioned(pointer_key, kMaxCurrentPointerBytes);
  if (!object.ok()) {
    if (object.status().code() == StatusCode::kNotFound) return std::optional<CurrentState>();
    return object.status();
  }
  ASSIGN_OR_RETURN(CurrentPointer pointer, ParseCurrentPointer(object->data));
  return std::optional<CurrentState>(CurrentState{std::move(pointer), object->version});
}

Result<Manifest> ReadManifest(ObjectStore& store, std::string_view key, std::string_view ref) {
  auto bytes = store.Get(key, kMaxManifestBytes);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) {
      return Status::NotFound(fmt::format("manifest '{}' does not exist", ref));
    }
    // Too large, a symlink or a FIFO: as bad as a manifest that does not parse.
    return bytes.status().WithContext(fmt::format("manifest '{}'", ref))
        .WithKindIf(StatusCode::kCorruption, ErrorKind::kManifestParse);
  }
  auto manifest = ParseManifest(*bytes);
  if (!manifest.ok()) {
    return manifest.status().WithContext(fmt::format("manifest '{}'", ref))
        .WithKindIf(StatusCode::kCorruption, ErrorKind::kManifestParse);
  }
  return manifest;
}

Result<SwapBase> ReadCurrentForSwap(ObjectStore& store, std::string_view pointer_key) {
  auto current = ReadCurrent(store, pointer_key);
  if (current.ok()) {
    if (!*current) return SwapBase{};
    return SwapBase{std::move((*current)->pointer), std::move((*current)->version)};
  }
  if (current.status().code() != StatusCode::kCorruption) return current.status();
  LogEvent(LogLevel::kWarning, "current_pointer_corrupt_replaced",
           {{"message", "replacing a corrupt _CURRENT: " + current.status().message()}});
  ASSIGN_OR_RETURN(VersionedObject raw, store.GetVersioned(pointer_key));
  return SwapBase{std::nullopt, std::move(raw.version)};
}

Result<PublishResult> PutManifest(ObjectStore& store, const Manifest& manifest) {
  ASSIGN_OR_RETURN(std::string bytes, SerializeManifest(manifest));
  const std::string key = ManifestKey(FormatTimestamp(NowUtc()), manifest.run_id);
  RETURN_IF_ERROR(
      store.PutIfAbsent(key, bytes).WithKindIf(StatusCode::kAlreadyExists, ErrorKind::kManifestExists));
  return PublishResult{store.Url(key), key};
}

Result<PublishResult> PublishSnapshot(ObjectStore& store, const Manifest& manifest,
                                      SystemTime run_started, PublishPolicy policy,
                                      std::string_view pointer_key) {
  ASSIGN_OR_RETURN(PublishResult published, PutManifest(store, manifest));
  RETURN_IF_ERROR(SwapCurrent(store, published, manifest.run_id, run_started, policy, pointer_key));
  LogEvent(LogLevel::kInfo, "vector_manifest_published",
           {{"run_id", manifest.run_id}, {"manifest_ref", published.manifest_ref}});
  return published;
}

Status SwapCurrent(ObjectStore& store, const PublishResult& published, const std::string& run_id,
                   SystemTime run_started, PublishPolicy policy, std::string_view pointer_key) {
  const std::string started = FormatTimestamp(run_started);
  CurrentPointer next;
  next.manifest_ref = published.manifest_ref;
  next.run_id = run_id;

  for (int attempt = 0; attempt < kMaxSwapAttempts; ++attempt) {
    ASSIGN_OR_RETURN(SwapBase base, ReadCurrentForSwap(store, pointer_key));
    if (base.pointer) {
      const auto dir = ParseManifestRef(base.pointer->manifest_ref);
      // Timestamps in the layout's format sort as text.
      if (policy == PublishPolicy::kRejectIfNewer && dir && dir->timestamp > started) {
        LogEvent(LogLevel::kWarning, "publish_conflict",
                 {{"run_id", run_id}, {"manifest_ref", published.manifest_ref},
                  {"current_manifest_ref", base.pointer->manifest_ref}, {"current_run_id", base.pointer->run_id}});
        return PublishConflict(fmt::format(
            "PublishConflictError: _CURRENT now names manifest '{}' (run_id={}), published after this "
            "run started at {}; this run's manifest '{}' stays in history (use rollback to make it "
            "current, or the last-writer-wins publish policy)",
            base.pointer->manifest_ref, base.pointer->run_id, started, published.manifest_ref), published);
      }
    }
    next.updated_at = FormatTimestamp(NowUtc());
    auto swapped = store.CompareAndSwap(pointer_key, EncodeCurrentPointer(next), base.version);
    if (swapped.ok()) return Status::OK();
    if (swapped.status().code() != StatusCode::kConflict) return swapped.status();
    // Another writer moved the pointer between our read and our swap: look again.
    LogEvent(LogLevel::kInfo, "publish_swap_retried", {{"run_id", run_id}, {"attempt", attempt + 1}});
  }
  LogEvent(LogLevel::kWarning, "publish_conflict",
           {{"run_id", run_id}, {"manifest_ref", published.manifest_ref}, {"attempts", kMaxSwapAttempts}});
  return PublishConflict(fmt::format(
      "PublishConflictError: _CURRENT kept changing during publish ({} attempts); manifest '{}' stays "
      "in history", kMaxSwapAttempts, published.manifest_ref), published);
}

}  // namespace shardvec
