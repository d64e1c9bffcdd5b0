#include "format/keys.h"

#include <fmt/format.h>

#include <algorithm>
#include <regex>
#include <utility>
#include <vector>

#include "common/status_macros.h"
#include "common/text_util.h"

namespace shardvec {

namespace {

bool IsSafeChar(char c, bool allow_equals) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-' || (allow_equals && c == '=');
}

Status CheckSegment(std::string_view value, std::string_view field, bool allow_equals) {
  const std::string_view allowed = allow_equals ? "[A-Za-z0-9._=-]" : "[A-Za-z0-9._-]";
  if (value.empty()) return Status::InvalidArgument(fmt::format("{} must be non-empty", field));
  if (value.find("..") != std::string_view::npos) {
    return Status::InvalidArgument(fmt::format("{} must not contain '..', got '{}'", field, EscapeForDisplay(value)));
  }
  if (value.find('/') != std::string_view::npos || value.find('\\') != std::string_view::npos) {
    return Status::InvalidArgument(fmt::format("{} must be a single path segment, got '{}'", field, EscapeForDisplay(value)));
  }
  if (value == "." || !std::all_of(value.begin(), value.end(), [&](char c) { return IsSafeChar(c, allow_equals); })) {
    return Status::InvalidArgument(
        fmt::format("{} contains unsupported characters; allowed: {}, got '{}'", field, allowed, EscapeForDisplay(value)));
  }
  return Status::OK();
}

// One piece of a db_path_template: literal text, or a {db_id:SPEC} field as an fmt spec.
struct TemplatePiece {
  bool is_field = false;
  std::string text;  // the literal, or the fmt spec ("" for {db_id})
};

// Python's integer format spec, restricted to what fmt formats identically.
Result<std::string> FmtSpecOf(std::string_view spec) {
  static const std::regex kSpec(R"(^(?:([^{}])?([<>^=]))?([- ]|\+)?(#)?(0)?([0-9]{0,2})([dxXob])?$)");
  std::cmatch m;
  if (!std::regex_match(spec.begin(), spec.end(), m, kSpec)) {
    return Status::InvalidArgument(fmt::format(
        "format spec '{}' is not supported; use [[fill]align][sign][#][0][width][type] with type d, x, X, o or b "
        "and a width below 100",
        EscapeForDisplay(spec)));
  }
  const bool aligned = m[2].matched;
  if (aligned && m[5].matched) {
    return Status::InvalidArgument(fmt::format("format spec '{}': '0' beside an alignment is not supported", EscapeForDisplay(spec)));
  }
  if (m[4].matched && m[7].str() == "o") {
    return Status::InvalidArgument(fmt::format("format spec '{}': '#' with type 'o' is not supported", EscapeForDisplay(spec)));
  }
  std::string out;
  if (aligned) {
    out += m[1].str();
    // Python's '=' pads between sign and digits; db ids are never negative, so it is '>' here.
    out += m[2].str() == "=" ? ">" : m[2].str();
  }
  out += m[3].str() + m[4].str() + m[5].str() + m[6].str() + m[7].str();
  return out;
}

Result<std::vector<TemplatePiece>> ParseDbPathTemplate(std::string_view tmpl) {
  std::vector<TemplatePiece> pieces;
  std::string literal;
  bool has_field = false;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    const char c = tmpl[i];
    if (c == '}') {
      if (i + 1 < tmpl.size() && tmpl[i + 1] == '}') {
        literal += '}';
        ++i;
        continue;
      }
      return Status::InvalidArgument("a single '}' must be written '}}'");
    }
    if (c != '{') {
      literal += c;
      continue;
    }
    if (i + 1 < tmpl.size() && tmpl[i + 1] == '{') {
      literal += '{';
      ++i;
      continue;
    }
    const size_t close = tmpl.find('}', i + 1);
    if (close == std::string_view::npos) return Status::InvalidArgument("a '{' is not closed");
    const std::string_view field = tmpl.substr(i + 1, close - i - 1);
    const size_t colon = field.find(':');
    const std::string_view name = field.substr(0, colon);
    if (name != "db_id") {
      return Status::InvalidArgument(fmt::format(
          "field '{{{}}}' is not supported; the only field is {{db_id}} (optionally {{db_id:SPEC}})",
          EscapeForDisplay(field)));
    }
    std::string spec;
    if (colon != std::string_view::npos) {
      ASSIGN_OR_RETURN(spec, FmtSpecOf(field.substr(colon + 1)));
    }
    if (!literal.empty()) pieces.push_back({false, std::exchange(literal, {})});
    pieces.push_back({true, std::move(spec)});
    has_field = true;
    i = close;
  }
  if (!literal.empty()) pieces.push_back({false, std::move(literal)});
  if (!has_field) return Status::InvalidArgument("it has no {db_id} field, so every shard would get the same folder");
  return pieces;
}

std::string FormatPieces(const std::vector<TemplatePiece>& pieces, int64_t db_id) {
  std::string out;
  for (const TemplatePiece& piece : pieces) {
    out += piece.is_field ? fmt::format(fmt::runtime("{:" + piece.text + "}"), db_id) : piece.text;
  }
  return out;
}

}  // namespace

Status ValidateKeyLayout(const KeyLayout& layout, const LayoutFieldNames& names) {
  RETURN_IF_ERROR(CheckSegment(layout.shard_prefix, names.shard_prefix, false));
  RETURN_IF_ERROR(CheckSegment(layout.run_registry_prefix, names.run_registry_prefix, false));
  const std::string_view field = names.db_path_template;
  auto pieces = ParseDbPathTemplate(layout.db_path_template);
  if (!pieces.ok()) {
    return Status::InvalidArgument(
        fmt::format("{} '{}' is not supported: {}", field, EscapeForDisplay(layout.db_path_template), pieces.status().message()));
  }
  std::string formatted;
  try {
    formatted = FormatPieces(*pieces, 0);
  } catch (const fmt::format_error& error) {
    return Status::InvalidArgument(fmt::format("{} '{}' does not format: {}", field, EscapeForDisplay(layout.db_path_template),
                                               error.what()));
  }
  Status segment = CheckSegment(formatted, fmt::format("{} '{}' formatted for db_id=0", field,
                                                       EscapeForDisplay(layout.db_path_template)), true);
  return segment;
}

std::string FormatDbPath(std::string_view db_path_template, int64_t db_id) {
  auto pieces = ParseDbPathTemplate(db_path_template);
  if (!pieces.ok()) return fmt::format("db={:05d}", db_id);  // unreachable after ValidateKeyLayout
  return FormatPieces(*pieces, db_id);
}

std::string ShardDirKey(std::string_view run_id, int64_t db_id, int64_t attempt, const KeyLayout& layout) {
  return fmt::format("{}/run_id={}/{}/attempt={:02d}", layout.shard_prefix, run_id,
                     FormatDbPath(layout.db_path_template, db_id), attempt);
}

std::string ShardKey(std::string_view run_id, int64_t db_id, int64_t attempt, const KeyLayout& layout) {
  return ShardDirKey(run_id, db_id, attempt, layout) + "/" + std::string(kShardFileName);
}

std::string ShardClaimKey(std::string_view run_id, int64_t db_id, int64_t attempt, const KeyLayout& layout) {
  return ShardDirKey(run_id, db_id, attempt, layout) + "/" + std::string(kClaimFileName);
}

std::string ShardIdIndexPartKey(std::string_view run_id, int64_t db_id, int64_t attempt, const KeyLayout& layout) {
  return ShardDirKey(run_id, db_id, attempt, layout) + "/" + std::string(kIdIndexPartFileName);
}

std::string RunShardsPrefix(std::string_view run_id, const KeyLayout& layout) {
  return fmt::format("{}/run_id={}/", layout.shard_prefix, run_id);
}

std::string RunClaimKey(std::string_view run_id, const KeyLayout& layout) {
  return RunShardsPrefix(run_id, layout) + std::string(kRunClaimFileName);
}

std::optional<ShardDirName> ParseShardDirKey(std::string_view key, std::string_view shard_prefix) {
  const std::string head = std::string(shard_prefix) + "/run_id=";
  if (key.substr(0, head.size()) != head) return std::nullopt;
  // run_id / db folder / attempt=NN, each one non-empty segment.
  std::string_view segments[3];
  size_t at = head.size();
  for (std::string_view& segment : segments) {
    if (at > key.size()) return std::nullopt;
    const size_t end = std::min(key.find('/', at), key.size());
    segment = key.substr(at, end - at);
    if (segment.empty()) return std::nullopt;
    at = end + 1;
  }
  if (segments[2].substr(0, 8) != "attempt=" || segments[2].size() == 8) return std::nullopt;
  const size_t dir_end = static_cast<size_t>(segments[2].data() + segments[2].size() - key.data());
  return ShardDirName{std::string(key.substr(0, dir_end)), std::string(segments[0])};
}

std::string VectorMetaKey(std::string_view run_id, std::string_view file_name) {
  return fmt::format("{}run_id={}/{}", kVectorMetaPrefix, run_id, file_name);
}

std::string ManifestKey(std::string_view timestamp, std::string_view run_id) {
  return fmt::format("{}{}_run_id={}/manifest", kManifestsPrefix, timestamp, run_id);
}

std::string RunRecordKey(std::string_view timestamp, std::string_view run_id, std::string_view uuid_hex,
                         std::string_view registry_prefix) {
  return fmt::format("{}/{}_run_id={}_{}/run.yaml", registry_prefix, timestamp, run_id, uuid_hex);
}

std::optional<std::string> RunIdOfRecordKey(std::string_view key, std::string_view registry_prefix) {
  static const std::regex kPattern(R"(^[^/]*?_run_id=([^/]+)_[0-9a-fA-F]+/run\.yaml$)");
  const std::string head = std::string(registry_prefix) + "/";
  if (key.substr(0, head.size()) != head) return std::nullopt;
  key.remove_prefix(head.size());
  std::cmatch m;
  if (!std::regex_match(key.begin(), key.end(), m, kPattern)) return std::nullopt;
  return m[1].str();
}

namespace {

// The key below `prefix_url` that `url` names, or nullopt when it is not under it; Corruption for a
// '.' or '..' segment (`store` names the prefix in the message).
Result<std::optional<std::string>> KeyBelow(std::string_view prefix_url, std::string_view url, std::string_view store) {
  const std::string prefix = std::string(prefix_url) + "/";
  if (url.substr(0, prefix.size()) != prefix) return std::optional<std::string>();
  const std::string_view key = url.substr(prefix.size());
  size_t start = 0;
  for (;;) {
    const size_t end = std::min(key.find('/', start), key.size());
    const std::string_view segment = key.substr(start, end - start);
    // Empty segments stay: the reference writes "prefix//shards/…" for a prefix with a trailing
    // slash, and on S3 that is the object's real key; on a folder "a//b" is "a/b", still inside.
    if (segment == "." || segment == "..") {
      return Status::Corruption(fmt::format("URL '{}' has a '.' or '..' path segment below {}", url, store));
    }
    if (end == key.size()) break;
    start = end + 1;
  }
  return std::optional<std::string>(key);
}

}  // namespace

Result<std::string> KeyFromUrl(std::string_view prefix_url, std::string_view url) {
  // Snapshot URLs come from manifests and pointers anyone with write access to the store may have
  // written: a URL that leaves the prefix (another folder or bucket, another scheme, '..') would
  // make the reader fetch, and trust, bytes from somewhere else. No fallback by folder names.
  ASSIGN_OR_RETURN(std::optional<std::string> key, KeyBelow(prefix_url, url, fmt::format("the store '{}'", prefix_url)));
  if (!key) return Status::Corruption(fmt::format("URL '{}' is outside the store '{}'", url, prefix_url));
  return std::move(*key);
}

std::string_view TrimTrailingSlashes(std::string_view prefix) {
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  return prefix;
}

Result<std::string> KeyFromSnapshotUrl(std::string_view prefix_url, std::string_view written_under,
                                       std::string_view url) {
  const std::string_view recorded = TrimTrailingSlashes(written_under);
  // A recorded prefix names a place (scheme://something); anything else maps nothing.
  const size_t scheme_end = recorded.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0 || scheme_end + 3 == recorded.size() ||
      recorded == prefix_url) {
    return KeyFromUrl(prefix_url, url);
  }
  ASSIGN_OR_RETURN(std::optional<std::string> key,
                   KeyBelow(prefix_url, url, fmt::format("the store '{}'", prefix_url)));
  if (key) return std::move(*key);
  // The recorded prefix only names this store as it was called when the snapshot was written: the
  // key is read here, in the store being read, never at the recorded place.
  ASSIGN_OR_RETURN(key, KeyBelow(recorded, url, fmt::format("the prefix '{}' the snapshot was written under", recorded)));
  if (key) return std::move(*key);
  return Status::Corruption(fmt::format("URL '{}' is outside the store '{}' and the prefix '{}' the snapshot was written under",
                                        url, prefix_url, recorded));
}

std::optional<ManifestDirName> ParseManifestDirName(std::string_view name) {
  static const std::regex kPattern(
      R"(^(?:manifests/)?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)_run_id=([^/]+)/?$)");
  std::cmatch m;
  if (!std::regex_match(name.begin(), name.end(), m, kPattern)) return std::nullopt;
  return ManifestDirName{m[1].str(), m[2].str()};
}

std::optional<ManifestDirName> ParseManifestRef(std::string_view ref) {
  const size_t at = ref.rfind("manifests/");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = ref.substr(at + 10);
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  return ParseManifestDirName(rest.substr(0, slash));
}

}  // namespace shardvec
