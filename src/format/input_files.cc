#include "shardvec/input_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/file_util.h"
#include "common/json_text.h"
#include "common/status_macros.h"
#include "common/text_util.h"
#include "format/binary_vectors.h"
#include "format/npy.h"
#include "format/routing_json.h"
#include "shardvec/limits.h"

namespace shardvec {
namespace {

using Json = nlohmann::ordered_json;  // ordered: payloads keep the user's key order

constexpr std::string_view kNpyMagic = "\x93NUMPY";

// ---------------------------------------------------------------------------------------------
// Messages

std::string FileLabel(std::string_view flag, const std::string& path) {
  return fmt::format("{} '{}'", flag, EscapeForDisplay(path));
}

Status Invalid(std::string_view label, std::string_view detail) {
  return Status::InvalidArgument(fmt::format("{}: {}", label, detail));
}

Status InvalidAtLine(std::string_view label, int64_t line, std::string_view detail) {
  return Status::InvalidArgument(fmt::format("{} line {}: {}", label, line, detail));
}

// A JSON value as it appears in a message, cut short so a huge vector does not flood the terminal.
std::string Describe(const Json& value) {
  constexpr size_t kMaxChars = 60;
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > kMaxChars) text = text.substr(0, kMaxChars) + "...";
  return text;
}

// ---------------------------------------------------------------------------------------------
// Reading files

Status ErrnoStatus(std::string_view label, int error_number) {
  if (error_number == ENOENT) return Status::NotFound(fmt::format("{}: file not found", label));
  return Status::IOError(fmt::format("{}: cannot read: {}", label, std::strerror(error_number)));
}

// Reads the whole file with as few read() calls as the kernel allows: inputs can be gigabytes.
Result<std::string> ReadWholeFile(const std::string& path, std::string_view label) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(label, errno);
  struct stat info;
  if (::fstat(fd, &info) != 0 || S_ISDIR(info.st_mode)) {
    int error_number = S_ISDIR(info.st_mode) ? EISDIR : errno;
    ::close(fd);
    return ErrnoStatus(label, error_number);
  }
  // A (sparse) file larger than the machine's memory is refused before the allocation: with memory
  // overcommit the allocation could succeed and filling it would wake the OOM killer instead.
  const int64_t memory = static_cast<int64_t>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE);
  std::string bytes;
  try {
    if (memory > 0 && info.st_size > memory) throw std::bad_alloc();
    bytes.resize(static_cast<size_t>(info.st_size));
  } catch (const std::exception&) {  // std::bad_alloc or std::length_error
    ::close(fd);
    return Status::InvalidArgument(
        fmt::format("{}: the file is {} bytes, more than this process can hold in memory", label, info.st_size));
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error_number = errno;
      ::close(fd);
      return ErrnoStatus(label, error_number);
    }
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  bytes.resize(done);
  return bytes;
}

bool IsGzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

// The uncompressed size gzip records in its last 4 bytes (mod 2^32): a good first allocation.
// Capped at deflate's best ratio (~1032:1) so a truncated file cannot make us allocate gigabytes.
size_t GzipSizeHint(std::string_view compressed) {
  if (compressed.size() < 18) return 0;
  uint32_t size = 0;
  for (int i = 0; i < 4; ++i) {
    size |= static_cast<uint32_t>(static_cast<unsigned char>(compressed[compressed.size() - 4 + i]))
            << (8 * i);
  }
  return std::min<size_t>(size, compressed.size() * 1032);
}

Result<std::string> GunzipFile(const std::string& path, std::string_view label, size_t size_hint) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return ErrnoStatus(label, errno == 0 ? ENOMEM : errno);
  gzbuffer(file, 1 << 18);
  // One spare byte so reading exactly the hinted size does not force a doubling before EOF.
  std::string out(std::max<size_t>(size_hint + 1, 1 << 16), '\0');
  size_t used = 0;
  while (true) {
    if (used == out.size()) out.resize(out.size() * 2);
    unsigned want = static_cast<unsigned>(std::min<size_t>(out.size() - used, 1u << 30));
    int n = gzread(file, out.data() + used, want);
    if (n <= 0) break;
    used += static_cast<size_t>(n);
  }
  int error_code = Z_OK;
  std::string error_text = gzerror(file, &error_code);
  gzclose(file);
  if (error_code == Z_ERRNO) return ErrnoStatus(label, errno);
  if (error_code != Z_OK) {
    return Invalid(label, fmt::format("gzip data is corrupt or truncated ({})", error_text));
  }
  out.resize(used);
  return out;
}

// Everything on standard input (the path "-"), until its end; gzip is refused.
Result<std::string> ReadStandardInput(std::string_view label) {
  std::string bytes;
  char buffer[1 << 16];
  while (true) {
    ssize_t n = ::read(STDIN_FILENO, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(label, errno);
    if (n == 0) break;
    try {
      bytes.append(buffer, static_cast<size_t>(n));
    } catch (const std::exception&) {  // std::bad_alloc or std::length_error
      return Status::InvalidArgument(
          fmt::format("{}: standard input holds more than this process can hold in memory", label));
    }
  }
  if (IsGzip(bytes)) return Invalid(label, "standard input is gzip-compressed; pipe it through 'gunzip -c' first");
  return bytes;
}

// The file's bytes, decompressed when they are gzip. "-" is standard input (not gzip).
Result<std::string> ReadInputBytes(const std::string& path, std::string_view label) {
  if (path == kStandardInputPath) return ReadStandardInput(label);
  ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(path, label));
  if (!IsGzip(bytes)) return bytes;
  return GunzipFile(path, label, GzipSizeHint(bytes));
}

// The lowercased extension, looking through a trailing ".gz": "v.JSONL.gz" -> ".jsonl".
std::string InputExtension(const std::string& path) {
  std::string name = AsciiLower(path.substr(path.find_last_of('/') + 1));
  if (name.size() > 3 && name.ends_with(".gz")) name.resize(name.size() - 3);
  size_t dot = name.find_last_of('.');
  return dot == std::string::npos ? "" : name.substr(dot);
}

bool HasNpyMagic(std::string_view bytes) { return bytes.starts_with(kNpyMagic); }

// ---------------------------------------------------------------------------------------------
// Text lines

bool IsBlank(std::string_view line) {
  return std::all_of(line.begin(), line.end(),
                     [](unsigned char c) { return std::isspace(c) != 0; });
}

std::string_view StripUtf8Bom(std::string_view text) {
  return text.starts_with("\xEF\xBB\xBF") ? text.substr(3) : text;
}

char FirstNonSpace(std::string_view text) {
  for (char c : StripUtf8Bom(text)) {
    if (!std::isspace(static_cast<unsigned char>(c))) return c;
  }
  return '\0';
}

using LineVisitor = std::function<Status(int64_t line_number, std::string_view line)>;

// Calls `visit` for every non-blank line (1-based numbers count blank lines too), without the
// trailing '\r' of Windows line ends. A line that is not UTF-8 is refused here, naming it: every
// text read from a line may end up in JSON (ids, payloads, manifests), which must be UTF-8.
Status ForEachLine(std::string_view text, std::string_view label, const LineVisitor& visit) {
  text = StripUtf8Bom(text);
  int64_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (IsBlank(line)) continue;
    if (Status st = CheckUtf8(line, "the line"); !st.ok()) return InvalidAtLine(label, line_number, st.message());
    RETURN_IF_ERROR(visit(line_number, line));
  }
  return Status::OK();
}

// "-12" and "007" are int64; "+3", "1e3", " 7" and values past int64 are not.
std::optional<int64_t> ParseInt64(std::string_view text) {
  std::string_view digits = text.starts_with('-') ? text.substr(1) : text;
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](unsigned char c) {
        return std::isdigit(c) != 0;
      })) {
    return std::nullopt;
  }
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string_view TrimSpaces(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// JSON values

// nlohmann's messages start with "[json.exception.parse_error.101] parse error at line 1, column
// 5: "; keep the column and the reason, and leave out the class tag and the always-1 line.
std::string DescribeParseError(const Json::parse_error& error) {
  std::string_view text = error.what();
  size_t reason = text.find(": ", text.find("column"));
  if (reason == std::string_view::npos) return EscapeForDisplay(text);
  return fmt::format("invalid JSON at column {}: {}", error.byte, EscapeForDisplay(text.substr(reason + 2)));
}

std::string TooDeepMessage() {
  return fmt::format("JSON nests arrays/objects deeper than {} levels", kMaxJsonNesting);
}

Result<Json> ParseJsonLine(std::string_view line, std::string_view label, int64_t line_number) {
  if (JsonNestsDeeperThan(line)) return InvalidAtLine(label, line_number, TooDeepMessage());
  try {
    return Json::parse(line);
  } catch (const Json::parse_error& error) {
    return InvalidAtLine(label, line_number, DescribeParseError(error));
  }
}

Result<Json> ParseJsonDocument(std::string_view text, std::string_view label) {
  if (Status st = CheckUtf8(text, "the text"); !st.ok()) return Invalid(label, st.message());
  if (JsonNestsDeeperThan(text)) return Invalid(label, TooDeepMessage());
  try {
    return Json::parse(StripUtf8Bom(text));
  } catch (const Json::parse_error& error) {
    return Invalid(label, DescribeParseError(error));
  }
}

std::optional<int64_t> JsonToInt64(const Json& value) {
  if (value.is_number_unsigned()) {
    uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(v);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  return std::nullopt;
}

std::optional<RecordId> JsonToRecordId(const Json& value) {
  if (value.is_string()) return RecordId(value.get<std::string>());
  if (std::optional<int64_t> id = JsonToInt64(value)) return RecordId(*id);
  return std::nullopt;
}

// A payload is a JSON object (kept as compact text) or null.
std::optional<std::optional<std::string>> JsonToPayload(const Json& value) {
  if (value.is_null()) return std::optional<std::string>();
  if (value.is_object()) return std::optional<std::string>(value.dump());
  return std::nullopt;
}

// A CEL routing context: a JSON object of variable -> scalar or {"__bytes_hex__": "<hex>"}. Errors
// are the detail of a message (`what` names the value, e.g. "field 'routing_context'", or is empty);
// the caller adds the file and the line.
Result<RoutingContext> JsonToRoutingContext(const Json& value, std::string_view what) {
  if (!value.is_object()) {
    if (what.empty()) {
      return Status::InvalidArgument(fmt::format(
          "expected a JSON object of variable -> value, found {}", Describe(value)));
    }
    return Status::InvalidArgument(fmt::format("{} is {}, expected a JSON object of variable -> value",
                                               what, Describe(value)));
  }
  return RoutingContextFromJson(nlohmann::json(value), "routing_context");
}

// ---------------------------------------------------------------------------------------------
// .jsonl vectors

// Accumulates rows of a .jsonl input, remembering which optional fields were seen where.
class JsonlVectorBuilder {
 public:
  explicit JsonlVectorBuilder(std::string_view label) : label_(label) {}

  Status AddLine(int64_t line_number, std::string_view line) {
    ASSIGN_OR_RETURN(Json record, ParseJsonLine(line, label_, line_number));
    if (!record.is_object()) {
      return InvalidAtLine(label_, line_number,
                           fmt::format("expected a JSON object, found {}", Describe(record)));
    }
    RETURN_IF_ERROR(AddVector(record, line_number));
    RETURN_IF_ERROR(AddId(record, line_number));
    RETURN_IF_ERROR(AddPayload(record, line_number));
    RETURN_IF_ERROR(AddShardId(record, line_number));
    RETURN_IF_ERROR(AddRoutingContext(record, line_number));
    ++input_.vectors.rows;
    return Status::OK();
  }

  Result<InputData> Finish() && {
    if (first_line_with_shard_id_ != 0 && first_line_without_shard_id_ != 0) {
      return InvalidAtLine(label_, first_line_without_shard_id_,
                           fmt::format("field 'shard_id' is missing (line {} has one; give every "
                                       "line a shard_id or none)",
                                       first_line_with_shard_id_));
    }
    if (first_line_with_context_ != 0 && first_line_without_context_ != 0) {
      return InvalidAtLine(label_, first_line_without_context_,
                           fmt::format("field 'routing_context' is missing (line {} has one; give "
                                       "every line a routing_context or none)",
                                       first_line_with_context_));
    }
    if (!any_id_) input_.ids.reset();
    if (!any_payload_) input_.payloads.reset();
    if (first_line_with_shard_id_ == 0) input_.shard_ids.reset();
    if (first_line_with_context_ == 0) input_.routing_contexts.reset();
    return std::move(input_);
  }

 private:
  static const Json* FindField(const Json& record, const char* name) {
    auto it = record.find(name);
    return it == record.end() || it->is_null() ? nullptr : &*it;
  }

  Status AddVector(const Json& record, int64_t line_number) {
    auto it = record.find("vector");
    if (it == record.end()) return InvalidAtLine(label_, line_number, "field 'vector' is missing");
    const Json& vector = *it;
    if (!vector.is_array()) {
      return InvalidAtLine(label_, line_number,
                           fmt::format("field 'vector' is {}, expected an array of numbers",
                                       Describe(vector)));
    }
    if (vector.empty()) return InvalidAtLine(label_, line_number, "field 'vector' is empty");
    Matrix& m = input_.vectors;
    int64_t size = static_cast<int64_t>(vector.size());
    if (m.rows == 0) {
      m.cols = size;
    } else if (size != m.cols) {
      return InvalidAtLine(label_, line_number,
                           fmt::format("vector has {} values, expected {} (ragged rows)", size,
                                       m.cols));
    }
    for (size_t i = 0; i < vector.size(); ++i) {
      if (!vector[i].is_number()) {
        return InvalidAtLine(label_, line_number,
                             fmt::format("field 'vector' value at index {} is {}, expected a "
                                         "number",
                                         i, Describe(vector[i])));
      }
      m.data.push_back(static_cast<float>(vector[i].get<double>()));
    }
    return Status::OK();
  }

  Status AddId(const Json& record, int64_t line_number) {
    const Json* field = FindField(record, "id");
    std::optional<RecordId> id;
    if (field != nullptr) {
      id = JsonToRecordId(*field);
      if (!id) {
        return InvalidAtLine(label_, line_number,
                             fmt::format("field 'id' is {}, expected an int64 or a string",
                                         Describe(*field)));
      }
      any_id_ = true;
    }
    input_.ids->push_back(id ? std::move(*id) : RecordId(input_.vectors.rows));
    return Status::OK();
  }

  Status AddPayload(const Json& record, int64_t line_number) {
    auto it = record.find("payload");
    if (it == record.end()) {
      input_.payloads->emplace_back();
      return Status::OK();
    }
    std::optional<std::optional<std::string>> payload = JsonToPayload(*it);
    if (!payload) {
      return InvalidAtLine(label_, line_number,
                           fmt::format("field 'payload' is {}, expected a JSON object or null",
                                       Describe(*it)));
    }
    any_payload_ = any_payload_ || payload->has_value();
    input_.payloads->push_back(std::move(*payload));
    return Status::OK();
  }

  Status AddShardId(const Json& record, int64_t line_number) {
    const Json* field = FindField(record, "shard_id");
    if (field == nullptr) {
      if (first_line_without_shard_id_ == 0) first_line_without_shard_id_ = line_number;
      return Status::OK();
    }
    std::optional<int64_t> shard_id = JsonToInt64(*field);
    if (!shard_id) {
      return InvalidAtLine(label_, line_number,
                           fmt::format("field 'shard_id' is {}, expected an integer",
                                       Describe(*field)));
    }
    if (first_line_with_shard_id_ == 0) first_line_with_shard_id_ = line_number;
    input_.shard_ids->push_back(*shard_id);
    return Status::OK();
  }

  Status AddRoutingContext(const Json& record, int64_t line_number) {
    const Json* field = FindField(record, "routing_context");
    if (field == nullptr) {
      if (first_line_without_context_ == 0) first_line_without_context_ = line_number;
      return Status::OK();
    }
    Result<RoutingContext> context = JsonToRoutingContext(*field, "field 'routing_context'");
    if (!context.ok()) return InvalidAtLine(label_, line_number, context.status().message());
    if (first_line_with_context_ == 0) first_line_with_context_ = line_number;
    input_.routing_contexts->push_back(std::move(context).value());
    return Status::OK();
  }

  std::string_view label_;
  // Every optional column is filled per row and dropped in Finish() if no row used it.
  InputData input_ = [] {
    InputData input;
    input.ids.emplace();
    input.payloads.emplace();
    input.shard_ids.emplace();
    input.routing_contexts.emplace();
    return input;
  }();
  bool any_id_ = false;
  bool any_payload_ = false;
  int64_t first_line_with_shard_id_ = 0;     // 0: none yet
  int64_t first_line_without_shard_id_ = 0;  // 0: none yet
  int64_t first_line_with_context_ = 0;      // 0: none yet
  int64_t first_line_without_context_ = 0;   // 0: none yet
};

Result<InputData> ParseVectorJsonl(std::string_view text, std::string_view label) {
  JsonlVectorBuilder builder(label);
  RETURN_IF_ERROR(ForEachLine(text, label, [&](int64_t line_number, std::string_view line) {
    return builder.AddLine(line_number, line);
  }));
  return std::move(builder).Finish();
}

// An input of vectors alone (.npy, .fvecs, IDX).
Result<InputData> VectorsOnly(Result<Matrix> vectors) {
  if (!vectors.ok()) return vectors.status();
  InputData input;
  input.vectors = std::move(vectors).value();
  return input;
}

// ---------------------------------------------------------------------------------------------
// Side files: JSON values one per line, or one .json array of them.

bool IsJsonExtension(const std::string& ext) {
  return ext == ".jsonl" || ext == ".json" || ext == ".ndjson";
}

// Converts each JSON value with `convert`; `expected` names what a value must be in messages.
template <typename T, typename Convert>
Result<std::vector<T>> ParseJsonValues(std::string_view text, const std::string& ext,
                                       std::string_view label, std::string_view expected,
                                       Convert convert) {
  std::vector<T> out;
  if (ext == ".json" && FirstNonSpace(text) == '[') {
    ASSIGN_OR_RETURN(Json array, ParseJsonDocument(text, label));
    for (size_t i = 0; i < array.size(); ++i) {
      std::optional<T> value = convert(array[i]);
      if (!value) {
        return Invalid(label, fmt::format("item {} is {}, expected {}", i, Describe(array[i]),
                                          expected));
      }
      out.push_back(std::move(*value));
    }
    return out;
  }
  RETURN_IF_ERROR(ForEachLine(text, label, [&](int64_t line_number, std::string_view line) -> Status {
    ASSIGN_OR_RETURN(Json json, ParseJsonLine(line, label, line_number));
    std::optional<T> value = convert(json);
    if (!value) {
      return InvalidAtLine(label, line_number,
                           fmt::format("{} is not {}", Describe(json), expected));
    }
    out.push_back(std::move(*value));
    return Status::OK();
  }));
  return out;
}

std::vector<RecordId> ToIntIds(const std::vector<int64_t>& values) {
  return std::vector<RecordId>(values.begin(), values.end());
}

}  // namespace

Result<InputData> LoadVectorInput(const std::string& path, std::string_view flag) {
  std::string label = FileLabel(flag, path);
  ASSIGN_OR_RETURN(std::string bytes, ReadInputBytes(path, label));
  std::string ext = InputExtension(path);
  if (ext == ".npy" || HasNpyMagic(bytes)) return VectorsOnly(ParseNpyMatrix(bytes, label));
  if (ext == ".fvecs") return VectorsOnly(ParseFvecs(bytes, label));
  if (ext == ".jsonl" || ext == ".ndjson") return ParseVectorJsonl(bytes, label);
  if (LooksLikeIdx(bytes)) return VectorsOnly(ParseIdx(bytes, label));
  if (FirstNonSpace(bytes) == '{') return ParseVectorJsonl(bytes, label);
  return Invalid(label, "unrecognised input format (expected .npy, .fvecs, IDX (.gz) or .jsonl)");
}

Result<Matrix> LoadMatrixFile(const std::string& path, std::string_view flag) {
  const std::string what = fmt::format("{} '{}'", flag, path);
  auto bytes = ReadWholeFile(path, kMaxNpyFileBytes);
  if (!bytes.ok()) return bytes.status().WithContext(flag);
  return ParseNpyMatrix(*bytes, what);
}

Result<std::vector<RecordId>> LoadIdsFile(const std::string& path, std::string_view flag) {
  std::string label = FileLabel(flag, path);
  ASSIGN_OR_RETURN(std::string bytes, ReadInputBytes(path, label));
  std::string ext = InputExtension(path);
  if (ext == ".npy" || HasNpyMagic(bytes)) {
    ASSIGN_OR_RETURN(std::vector<int64_t> values, ParseNpyIntegers(bytes, label));
    return ToIntIds(values);
  }
  if (IsJsonExtension(ext)) {
    return ParseJsonValues<RecordId>(bytes, ext, label, "an int64 or a string id",
                                     JsonToRecordId);
  }
  std::vector<RecordId> ids;
  RETURN_IF_ERROR(ForEachLine(bytes, label, [&](int64_t, std::string_view line) {
    if (std::optional<int64_t> id = ParseInt64(line)) {
      ids.emplace_back(*id);
    } else {
      ids.emplace_back(std::string(line));
    }
    return Status::OK();
  }));
  return ids;
}

Result<std::vector<std::optional<std::string>>> LoadPayloadsFile(const std::string& path,
                                                                 std::string_view flag) {
  std::string label = FileLabel(flag, path);
  ASSIGN_OR_RETURN(std::string bytes, ReadInputBytes(path, label));
  return ParseJsonValues<std::optional<std::string>>(bytes, InputExtension(path), label,
                                                     "a JSON object or null", JsonToPayload);
}

Result<std::vector<int64_t>> LoadShardIdsFile(const std::string& path, std::string_view flag) {
  std::string label = FileLabel(flag, path);
  ASSIGN_OR_RETURN(std::string bytes, ReadInputBytes(path, label));
  if (InputExtension(path) == ".npy" || HasNpyMagic(bytes)) {
    return ParseNpyIntegers(bytes, label);
  }
  std::vector<int64_t> shard_ids;
  RETURN_IF_ERROR(ForEachLine(bytes, label, [&](int64_t line_number, std::string_view line) {
    std::string_view text = TrimSpaces(line);
    std::optional<int64_t> shard_id = ParseInt64(text);
    if (!shard_id) {
      return InvalidAtLine(label, line_number,
                           fmt::format("'{}' is not an integer shard id", text));
    }
    shard_ids.push_back(*shard_id);
    return Status::OK();
  }));
  return shard_ids;
}

Result<std::vector<RoutingContext>> LoadRoutingContextsFile(const std::string& path,
                                                            std::string_view flag) {
  std::string label = FileLabel(flag, path);
  ASSIGN_OR_RETURN(std::string bytes, ReadInputBytes(path, label));
  std::vector<RoutingContext> contexts;
  if (InputExtension(path) == ".json" && FirstNonSpace(bytes) == '[') {
    ASSIGN_OR_RETURN(Json array, ParseJsonDocument(bytes, label));
    for (size_t i = 0; i < array.size(); ++i) {
      Result<RoutingContext> context = JsonToRoutingContext(array[i], "");
      if (!context.ok()) {
        return Invalid(label, fmt::format("item {}: {}", i, context.status().message()));
      }
      contexts.push_back(std::move(context).value());
    }
    return contexts;
  }
  RETURN_IF_ERROR(ForEachLine(bytes, label, [&](int64_t line_number, std::string_view line) -> Status {
    ASSIGN_OR_RETURN(Json json, ParseJsonLine(line, label, line_number));
    Result<RoutingContext> context = JsonToRoutingContext(json, "");
    if (!context.ok()) return InvalidAtLine(label, line_number, context.status().message());
    contexts.push_back(std::move(context).value());
    return Status::OK();
  }));
  return contexts;
}

Result<std::vector<RoutingValue>> LoadRoutingValuesFile(const std::string& path,
                                                        std::string_view flag) {
  std::string label = FileLabel(flag, path);
  ASSIGN_OR_RETURN(std::string bytes, ReadInputBytes(path, label));
  ASSIGN_OR_RETURN(Json json, ParseJsonDocument(bytes, label));
  if (!json.is_array()) {
    return Invalid(label, fmt::format("expected a JSON array of routing tokens (ints, strings or "
                                      "{{\"__bytes_hex__\": \"<hex>\"}}), found {}",
                                      Describe(json)));
  }
  Result<std::vector<RoutingValue>> values =
      RoutingValuesFromJson(nlohmann::json(json), "routing_values");
  if (!values.ok()) return Invalid(label, values.status().message());
  return values;
}

}  // namespace shardvec
