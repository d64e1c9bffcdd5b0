// The SQLite manifest (format_version 4, docs/snapshot-format.md#manifest): tables build_meta (one row) and shards (one row
// per non-empty shard), serialised as database bytes. Pure functions over bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shardvec/manifest.h"
#include "shardvec/status.h"

namespace shardvec {

Result<std::string> SerializeManifest(const Manifest& manifest);
// Corruption ("manifest: …") on anything the reference's parse-time validation rejects.
Result<Manifest> ParseManifest(std::string_view bytes);
// The same checks over a manifest read from elsewhere (another manifest store): Corruption
// (ErrorKind::kManifestParse) "manifest: …" naming the field.
Status ValidateManifest(const Manifest& manifest);
// A JSON column's text as a manifest field: discarded (so rejected by ValidateManifest) when it is
// not JSON or nests deeper than kMaxJsonNesting.
nlohmann::json ParseManifestJson(const std::string& text);

// custom["shardvec"][table][name] ("xxh3:<hex>"; table "shard_digests" by db_id or
// "artifact_digests" by artifact name) when the writer recorded one (older snapshots and other
// writers' have none); Corruption (ErrorKind::kManifestParse) when the key is there but malformed.
Result<std::optional<std::string>> RecordedDigest(const Manifest& manifest, std::string_view table,
                                                  const std::string& name);

}  // namespace shardvec
