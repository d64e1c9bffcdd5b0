// Where a snapshot's manifests and its current pointer live. The default keeps them beside the shards
// in the object store (manifests/<timestamp>_run_id=<run>/manifest and _CURRENT); a PostgreSQL
// database or any user-supplied store can hold them instead, while the shards stay in the object store.
// The writer publishes through one, the reader loads through one, and history/rollback/cleanup list
// and move the pointer through one.
//
//   auto objects = shardvec::OpenStore("s3://bucket/vectors");
//   auto manifests = shardvec::OpenManifestStore("postgresql://127.0.0.1/db", *objects);
//   auto current = (*manifests)->LoadCurrent();
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/config.h"
#include "shardvec/manifest.h"
#include "shardvec/object_store.h"
#include "shardvec/status.h"

namespace shardvec {

// A published manifest: `ref` is what LoadManifest and SetCurrent take (a URL for the object-store
// layout, an opaque string for others); `published_at` is UTC ISO-8601 with microseconds
// ("2026-03-14T10:30:00.000000Z"), so newer sorts after older as text.
struct ManifestRef {
  std::string ref;
  std::string run_id;
  std::string published_at;
};

// What Publish checks before it moves the pointer.
struct PublishGuard {
  // When the publishing run started; under kRejectIfNewer a current manifest published after this
  // fails the publish with Conflict (ErrorKind::kPublishConflict), the new manifest staying listed.
  std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds> run_started{};
  PublishPolicy policy = PublishPolicy::kRejectIfNewer;
};

class ManifestStore {
 public:
  virtual ~ManifestStore() = default;

  // Persists `manifest` (never overwriting another) and makes it current, atomically with respect to
  // other publishers and SetCurrent: two racing publishes never lose a pointer update. Returns the ref.
  virtual Result<ManifestRef> Publish(const Manifest& manifest, const PublishGuard& guard) = 0;

  // The current pointer, or nullopt when nothing was published.
  virtual Result<std::optional<ManifestRef>> LoadCurrent() = 0;

  // NotFound when `ref` names no manifest; Corruption (ErrorKind::kManifestParse) when it does not parse.
  virtual Result<Manifest> LoadManifest(const std::string& ref) = 0;

  // Newest first; limit 0 lists all.
  virtual Result<std::vector<ManifestRef>> ListManifests(int64_t limit) = 0;

  // Points the current pointer at `ref` (which must exist: NotFound otherwise). With `expected`, only
  // when the current pointer still names expected->ref (an empty ref: no pointer yet), else Conflict.
  virtual Status SetCurrent(const std::string& ref, const std::optional<ManifestRef>& expected) = 0;

  // For messages and logs: where it keeps manifests, with any password removed.
  virtual std::string Describe() const = 0;
};

// Options of the object-store layout.
struct ObjectManifestStoreOptions {
  std::string current_pointer_key = "_CURRENT";  // relative to the store's prefix
};

// Manifests and the pointer in `objects` (the layout shardyfusion's S3ManifestStore writes).
std::unique_ptr<ManifestStore> MakeObjectManifestStore(std::shared_ptr<ObjectStore> objects,
                                                       const ObjectManifestStoreOptions& options = {});

// The same over a store the caller keeps alive for as long as the manifest store is used.
std::unique_ptr<ManifestStore> MakeObjectManifestStore(ObjectStore& objects,
                                                       const ObjectManifestStoreOptions& options = {});

// Options of the PostgreSQL store: the reference's table names.
struct PostgresManifestStoreOptions {
  std::string table_name = "shardyfusion_manifests";       // tables <name>_builds and <name>_shards
  std::string pointer_table_name = "shardyfusion_pointer";  // append-only pointer history
  bool ensure_table = true;                                  // CREATE TABLE IF NOT EXISTS on open
};

// A PostgreSQL manifest store reached through libpq with a DSN ("postgresql://user@host:port/db" or
// "host=… dbname=…"). InvalidArgument naming the field for a bad DSN or table name; IOError when the
// server cannot be reached.
Result<std::unique_ptr<ManifestStore>> OpenPostgresManifestStore(
    std::string_view dsn, const PostgresManifestStoreOptions& options = {});

// `spec` empty: the object-store layout over `objects`; "postgresql://…" or "postgres://…": PostgreSQL
// (default table names). Anything else is InvalidArgument naming --manifest-store.
Result<std::unique_ptr<ManifestStore>> OpenManifestStore(std::string_view spec,
                                                         std::shared_ptr<ObjectStore> objects);

}  // namespace shardvec
