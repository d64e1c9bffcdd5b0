#include "fuzz/fuzz_targets.h"

#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "format/current_pointer.h"
#include "format/manifest.h"
#include "format/npy.h"
#include "routing/cel/cel.h"
#include "shard/filter_column_builder.h"
#include "shard/filter_column_table.h"
#include "shardvec/input_files.h"
#include "support/test_util.h"

namespace shardvec::fuzz {
namespace {

// ---------------------------------------------------------------------------------------------
// Shared invariant: a failed parse says why.

std::string CheckErrorHasMessage(const Status& status, std::string_view parser) {
  if (status.message().empty()) return fmt::format("{} failed with an empty message", parser);
  return "";
}

// ---------------------------------------------------------------------------------------------
// _CURRENT pointer: parse; a parsed pointer re-encodes and re-parses to the same fields.

bool SamePointer(const CurrentPointer& a, const CurrentPointer& b) {
  return a.manifest_ref == b.manifest_ref && a.manifest_content_type == b.manifest_content_type &&
         a.run_id == b.run_id && a.updated_at == b.updated_at && a.format_version == b.format_version;
}

std::string RunCurrentPointerChecks(std::string_view data, bool& accepted) {
  Result<CurrentPointer> parsed = ParseCurrentPointer(data);
  if (!parsed.ok()) return CheckErrorHasMessage(parsed.status(), "ParseCurrentPointer");
  accepted = true;
  const std::string encoded = EncodeCurrentPointer(*parsed);
  Result<CurrentPointer> again = ParseCurrentPointer(encoded);
  if (!again.ok()) return "re-encoded pointer does not parse: " + again.status().message();
  if (!SamePointer(*parsed, *again)) return "re-encoded pointer parses to different fields: " + encoded;
  if (EncodeCurrentPointer(*again) != encoded) return "pointer encoding is not stable: " + encoded;
  return "";
}

std::vector<std::string> CurrentPointerSeeds() {
  CurrentPointer p;
  p.manifest_ref = "manifests/2026-01-02T03:04:05.678901Z_run_id=abc/manifest";
  p.run_id = "abc";
  p.updated_at = "2026-01-02T03:04:05.678901+00:00";
  CurrentPointer q = p;
  q.manifest_ref = "s3://bucket/prefix/manifests/x/manifest";
  q.updated_at = "2026-01-02T03:04:05Z";
  q.format_version = 7;
  return {EncodeCurrentPointer(p), EncodeCurrentPointer(q),
          R"({"manifest_ref":"m","manifest_content_type":"application/x-sqlite3","run_id":"r",)"
          R"("updated_at":"2026-01-02T03:04:05","extra":[1,{"a":null}]})"};
}

// ---------------------------------------------------------------------------------------------
// Manifest (SQLite bytes): parse; a parsed manifest re-serialises and re-parses to the same value.

bool SameManifest(const Manifest& a, const Manifest& b) {
  if (a.run_id != b.run_id || a.created_at != b.created_at || a.num_dbs != b.num_dbs ||
      a.s3_prefix != b.s3_prefix || a.key_col != b.key_col || a.sharding != b.sharding ||
      a.db_path_template != b.db_path_template || a.shard_prefix != b.shard_prefix ||
      a.format_version != b.format_version || a.key_encoding != b.key_encoding ||
      a.custom != b.custom || a.shards.size() != b.shards.size()) {
    return false;
  }
  for (size_t i = 0; i < a.shards.size(); ++i) {
    const ManifestShard& x = a.shards[i];
    const ManifestShard& y = b.shards[i];
    if (x.db_id != y.db_id || x.db_url != y.db_url || x.attempt != y.attempt ||
        x.row_count != y.row_count || x.db_bytes != y.db_bytes || x.checkpoint_id != y.checkpoint_id ||
        x.writer_info != y.writer_info) {
      return false;
    }
  }
  return true;
}

std::string RunManifestChecks(std::string_view data, bool& accepted) {
  Result<Manifest> parsed = ParseManifest(data);
  if (!parsed.ok()) return CheckErrorHasMessage(parsed.status(), "ParseManifest");
  accepted = true;
  // Its JSON columns are objects (nlohmann's "discarded" marks text that did not parse).
  if (!parsed->sharding.is_object() || !parsed->custom.is_object()) return "sharding or custom is not an object";
  for (const ManifestShard& shard : parsed->shards) {
    if (!shard.writer_info.is_object()) return fmt::format("shard {}'s writer_info is not an object", shard.db_id);
  }
  Result<std::string> bytes = SerializeManifest(*parsed);
  if (!bytes.ok()) return "a parsed manifest does not serialise: " + bytes.status().message();
  Result<Manifest> again = ParseManifest(*bytes);
  if (!again.ok()) return "a re-serialised manifest does not parse: " + again.status().message();
  if (!SameManifest(*parsed, *again)) return "a re-serialised manifest parses to a different value";
  return "";
}

std::vector<std::string> ManifestSeeds() {
  Manifest empty;
  empty.run_id = "run-0";
  empty.created_at = "2026-01-02T03:04:05.678901+00:00";
  empty.num_dbs = 1;
  empty.s3_prefix = "/tmp/store";
  Manifest full = empty;
  full.num_dbs = 4;
  full.custom = {{"vector", {{"dim", 8}, {"metric", "cosine"}, {"sharding", {{"strategy", "cluster"}}}}},
                 {"note", "héllo"}};
  for (int64_t id : {0, 2, 3}) {
    ManifestShard shard;
    shard.db_id = id;
    shard.db_url = fmt::format("/tmp/store/shards/run_id=run-0/db={:05d}/attempt=00/shard.db", id);
    shard.row_count = 10 * id + 1;
    shard.db_bytes = 4096 * (id + 1);
    if (id == 2) shard.checkpoint_id = "ck";
    full.shards.push_back(shard);
  }
  std::vector<std::string> seeds;
  for (const Manifest* m : {&empty, &full}) {
    Result<std::string> bytes = SerializeManifest(*m);
    if (bytes.ok()) seeds.push_back(*bytes);
  }
  return seeds;
}

// ---------------------------------------------------------------------------------------------
// .npy: the matrix and the integer readers; a parsed matrix re-encodes and re-parses to the same bits.

std::string RunNpyChecks(std::string_view data, bool& accepted) {
  Result<std::vector<int64_t>> integers = ParseNpyIntegers(data, "fuzz.npy");
  accepted = integers.ok();
  if (!integers.ok()) {
    if (std::string broken = CheckErrorHasMessage(integers.status(), "ParseNpyIntegers"); !broken.empty()) {
      return broken;
    }
  }
  Result<Matrix> parsed = ParseNpyMatrix(data, "fuzz.npy");
  if (!parsed.ok()) {
    if (!parsed.status().message().starts_with("fuzz.npy: ")) {
      return "ParseNpyMatrix's error does not start with the file's name: " + parsed.status().message();
    }
    return "";
  }
  accepted = true;
  const Matrix& m = *parsed;
  if (m.rows < 0 || m.cols < 0 || m.data.size() != static_cast<size_t>(m.rows) * static_cast<size_t>(m.cols)) {
    return fmt::format("matrix {}x{} holds {} values", m.rows, m.cols, m.data.size());
  }
  Result<Matrix> again = ParseNpyMatrix(EncodeNpyMatrix(m), "re-encoded");
  if (!again.ok()) return "a re-encoded matrix does not parse: " + again.status().message();
  if (again->rows != m.rows || again->cols != m.cols ||
      (!m.data.empty() && std::memcmp(again->data.data(), m.data.data(), m.data.size() * sizeof(float)) != 0)) {
    return fmt::format("a re-encoded {}x{} matrix parses to different values", m.rows, m.cols);
  }
  return "";
}

std::vector<std::string> NpySeeds() {
  using testing::MakeNpy;
  using testing::RawBytes;
  Matrix m{2, 3, {1.5f, -2.0f, 0.0f, 3.25f, 1e-3f, -7.0f}};
  std::string v2 = MakeNpy("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }",
                           std::string("\x3f\xf0\0\0\0\0\0\0\xc0\0\0\0\0\0\0\0", 16));
  v2[6] = '\x02';  // version 2.0: a 4-byte header length
  v2.insert(10, 2, '\0');
  return {EncodeNpyMatrix(m),
          MakeNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", RawBytes<double>({1, 2, 3})),
          MakeNpy("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 1), }", RawBytes<int64_t>({7, -9})),
          MakeNpy("{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", std::string("\x01\x02\x03\xff", 4)),
          MakeNpy("{'descr': '<u8', 'fortran_order': False, 'shape': [2L], }", RawBytes<uint64_t>({1, 2})),
          MakeNpy("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (0, 4), }", ""),
          v2};
}

// ---------------------------------------------------------------------------------------------
// The CLI's input files: the first byte picks the reader and the file name (whose extension picks
// the format), the rest is the file's content.

enum class Reader { kVectors, kIds, kPayloads, kShardIds, kRoutingContexts, kRoutingValues };

struct InputKind {
  Reader reader;
  const char* file_name;
};

constexpr InputKind kInputKinds[] = {
    {Reader::kVectors, "v.jsonl"},       {Reader::kVectors, "v.fvecs"},
    {Reader::kVectors, "v.npy"},         {Reader::kVectors, "train-images-idx3-ubyte"},
    {Reader::kIds, "ids.txt"},           {Reader::kIds, "ids.json"},
    {Reader::kIds, "ids.npy"},           {Reader::kPayloads, "p.jsonl"},
    {Reader::kPayloads, "p.json"},       {Reader::kShardIds, "s.txt"},
    {Reader::kShardIds, "s.npy"},        {Reader::kRoutingContexts, "c.jsonl"},
    {Reader::kRoutingContexts, "c.json"}, {Reader::kRoutingValues, "r.json"},
};
constexpr size_t kNumInputKinds = std::size(kInputKinds);

// One scratch folder per process (libFuzzer's -fork/-jobs run several at once), removed at exit.
class ScratchFolder {
 public:
  ScratchFolder()
      : path_(std::filesystem::temp_directory_path() / fmt::format("shardvec-fuzz-{}", ::getpid())) {
    std::filesystem::create_directories(path_);
  }
  ~ScratchFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

const std::filesystem::path& ScratchDir() {
  static const ScratchFolder folder;
  return folder.path();
}

std::string CheckInputError(const Status& status, const std::string& path) {
  if (status.message().empty()) return "input reader failed with an empty message";
  if (status.message().find("'" + path + "'") == std::string::npos) {
    return "input reader's error does not name the file: " + status.message();
  }
  if (status.code() != StatusCode::kInvalidArgument) {
    return "input reader's error on bad content is not InvalidArgument: " + status.message();
  }
  return "";
}

template <typename T>
std::string CheckColumn(const std::optional<std::vector<T>>& column, int64_t rows, const char* name) {
  if (column && static_cast<int64_t>(column->size()) != rows) {
    return fmt::format("{} has {} entries for {} rows", name, column->size(), rows);
  }
  return "";
}

std::string CheckVectorInput(const InputData& input, std::string_view content, bool fvecs) {
  const Matrix& m = input.vectors;
  if (m.rows < 0 || m.cols < 0 || m.data.size() != static_cast<size_t>(m.rows) * static_cast<size_t>(m.cols)) {
    return fmt::format("vectors {}x{} hold {} values", m.rows, m.cols, m.data.size());
  }
  for (std::string broken : {CheckColumn(input.ids, m.rows, "ids"), CheckColumn(input.payloads, m.rows, "payloads"),
                             CheckColumn(input.shard_ids, m.rows, "shard_ids"),
                             CheckColumn(input.routing_contexts, m.rows, "routing_contexts")}) {
    if (!broken.empty()) return broken;
  }
  // .fvecs has one encoding: what parsed must re-encode to the very bytes (unless gzip-compressed).
  if (fvecs && !(content.size() >= 2 && content[0] == '\x1f' && content[1] == '\x8b')) {
    std::string encoded;
    for (int64_t r = 0; r < m.rows; ++r) {
      const int32_t dim = static_cast<int32_t>(m.cols);
      encoded.append(reinterpret_cast<const char*>(&dim), sizeof(dim));
      encoded.append(reinterpret_cast<const char*>(m.row(r)), static_cast<size_t>(m.cols) * sizeof(float));
    }
    if (encoded != content) return ".fvecs input does not re-encode to its own bytes";
  }
  return "";
}

template <typename T>
std::string CheckLoaded(const Result<T>& loaded, const std::string& path, bool& accepted) {
  accepted = loaded.ok();
  return loaded.ok() ? "" : CheckInputError(loaded.status(), path);
}

std::string RunInputFilesChecks(std::string_view data, bool& accepted) {
  if (data.empty()) return "";
  const InputKind& kind = kInputKinds[static_cast<unsigned char>(data[0]) % kNumInputKinds];
  const std::string_view content = data.substr(1);
  const std::string path = (ScratchDir() / kind.file_name).string();
  {
    // Unlink, then create: truncating a file in place makes ext4 flush it to disk on close
    // (auto_da_alloc), which would make each execution wait for the disk.
    std::filesystem::remove(path);
    std::ofstream out(path, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) return "cannot write the fuzz input file " + path;  // not a finding: the harness broke
  }
  switch (kind.reader) {
    case Reader::kVectors: {
      Result<InputData> loaded = LoadVectorInput(path);
      if (!loaded.ok()) return CheckInputError(loaded.status(), path);
      accepted = true;
      return CheckVectorInput(*loaded, content, std::string_view(kind.file_name).ends_with(".fvecs"));
    }
    case Reader::kIds: return CheckLoaded(LoadIdsFile(path), path, accepted);
    case Reader::kPayloads: return CheckLoaded(LoadPayloadsFile(path), path, accepted);
    case Reader::kShardIds: return CheckLoaded(LoadShardIdsFile(path), path, accepted);
    case Reader::kRoutingContexts: return CheckLoaded(LoadRoutingContextsFile(path), path, accepted);
    case Reader::kRoutingValues: return CheckLoaded(LoadRoutingValuesFile(path), path, accepted);
  }
  return "";
}

// gzip (RFC 1952) of `text`, as gzip(1) writes it.
std::string Gzip(std::string_view text) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, text.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

size_t InputKindIndex(std::string_view file_name) {
  for (size_t i = 0; i < kNumInputKinds; ++i) {
    if (file_name == kInputKinds[i].file_name) return i;
  }
  return 0;
}

std::vector<std::string> InputFileSeeds() {
  using testing::RawBytes;
  const std::string jsonl =
      "{\"id\": 7, \"vector\": [1.0, 2.5, -3], \"payload\": {\"k\": [1, \"x\"]}, \"shard_id\": 1, "
      "\"routing_context\": {\"region\": \"eu\", \"b\": {\"__bytes_hex__\": \"00ff\"}}}\n"
      "\n"
      "{\"id\": \"doc-8\", \"vector\": [0, 1e-3, 4], \"payload\": null, \"shard_id\": 0, "
      "\"routing_context\": {\"region\": \"us\", \"b\": {\"__bytes_hex__\": \"\"}}}\r\n";
  std::string fvecs;
  for (int r = 0; r < 2; ++r) fvecs += RawBytes<int32_t>({3}) + RawBytes<float>({1.0f * r, 2.0f, -3.5f});
  std::string idx_u8("\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00\x02", 16);
  idx_u8 += std::string("\x00\x10\x80\xff\x01\x02\x03\x04", 8);
  std::string idx_f32("\x00\x00\x0d\x03\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x02", 16);
  idx_f32 += std::string("\x3f\x80\x00\x00\xc0\x00\x00\x00", 8);
  const std::string npy_ids =
      testing::MakeNpy("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", RawBytes<int64_t>({4, 5, 6}));
  auto with_kind = [](std::string_view file_name, std::string_view content) {
    return std::string(1, static_cast<char>(InputKindIndex(file_name))) + std::string(content);
  };
  return {
      with_kind("v.jsonl", jsonl),
      with_kind("v.jsonl", Gzip(jsonl)),
      with_kind("v.fvecs", fvecs),
      with_kind("v.npy", EncodeNpyMatrix(Matrix{1, 2, {0.5f, 1.5f}})),
      with_kind("train-images-idx3-ubyte", idx_u8),
      with_kind("train-images-idx3-ubyte", idx_f32),
      with_kind("ids.txt", "7\n-12\ndoc-3\r\n\n007\n"),
      with_kind("ids.json", "[1, \"two\", 3]"),
      with_kind("ids.npy", npy_ids),
      with_kind("p.jsonl", "{\"a\": 1}\nnull\n{\"nested\": {\"x\": [true, null]}}\n"),
      with_kind("p.json", "[{\"a\": 1}, null]"),
      with_kind("s.txt", "0\n 3 \n12\n"),
      with_kind("s.npy", npy_ids),
      with_kind("c.jsonl", "{\"tenant\": \"acme\", \"n\": 5, \"d\": 1.5, \"ok\": true}\n{\"tenant\": \"x\"}\n"),
      with_kind("c.json", "[{\"tenant\": \"acme\"}, {\"b\": {\"__bytes_hex__\": \"c3a9\"}}]"),
      with_kind("r.json", "[1, \"eu\", {\"__bytes_hex__\": \"00\"}, -5]"),
  };
}

// ---------------------------------------------------------------------------------------------
// CEL: compile against one column of every type; whatever compiles evaluates against fixed
// contexts without returning an internal value type.

const std::vector<RoutingContext>& CelContexts() {
  static const std::vector<RoutingContext> contexts = [] {
    std::vector<RoutingContext> out;
    out.push_back({{"i", int64_t{7}}, {"u", uint64_t{32}}, {"d", 1.5}, {"s", std::string("héllo")},
                   {"b", Bytes{std::string("\x00\xff", 2)}}, {"t", true}});
    out.push_back({{"i", std::numeric_limits<int64_t>::min()}, {"u", std::numeric_limits<uint64_t>::max()},
                   {"d", std::numeric_limits<double>::quiet_NaN()}, {"s", std::string("")},
                   {"b", Bytes{std::string("\xc3")}}, {"t", false}});
    out.push_back({{"i", int64_t{0}}, {"d", -std::numeric_limits<double>::infinity()}});  // some unbound
    return out;
  }();
  return contexts;
}

std::string RunCelChecks(std::string_view data, bool& accepted) {
  auto program = cel::Program::Compile(data, CelFuzzColumns());
  if (!program.ok()) return CheckErrorHasMessage(program.status(), "cel::Program::Compile");
  accepted = true;
  cel::Scratch scratch;
  std::vector<cel::Value> slots((*program)->variables().size());
  for (const RoutingContext& context : CelContexts()) {
    std::fill(slots.begin(), slots.end(), cel::Value{});
    if (!(*program)->Bind(context, slots).ok()) continue;
    Result<cel::Value> value = (*program)->Evaluate(slots, scratch);
    if (!value.ok()) {
      if (value.status().message().empty()) return "cel Evaluate failed with an empty message";
      continue;
    }
    if (value->type == cel::Type::kError || value->type == cel::Type::kUnbound) {
      return "cel Evaluate returned an internal value type";
    }
  }
  return "";
}

std::vector<std::string> CelSeeds() {
  return {"shard_hash(s) % 32u", "s in ['a', 'héllo'] && t ? 1 : 2", "int(d) + i * 2", "string(b) + s",
          "[1, 'a'] == [1u, 'a']", "uint(s) / u", "b'\\x00' + bytes(s)", "s.startsWith('h') || size(b) > 1",
          "double(i) / d < 1e309 ? 'x' : \"y\"", "r'\\n' + '''z''' + '\\u00e9'"};
}

// ---------------------------------------------------------------------------------------------
// Filter column blobs (a shard's shardvec_filter_columns data, read from stores others write): byte 0
// picks the type, byte 1 the row count, the rest is the blob. A refused blob is a Corruption with a
// message; an accepted one re-encodes to the very same bytes.

std::string RunFilterColumnChecks(std::string_view data, bool& accepted) {
  if (data.size() < 2) return "";
  const auto type = static_cast<FilterType>(static_cast<uint8_t>(data[0]) % 5);
  const int64_t rows = static_cast<uint8_t>(data[1]);
  const std::string_view blob = data.substr(2);
  Result<FilterColumn> column = DecodeFilterColumn("c", type, rows, blob, "fuzz");
  accepted = column.ok();
  if (!column.ok()) {
    if (column.status().code() != StatusCode::kCorruption) {
      return "DecodeFilterColumn failed with a code other than Corruption: " + column.status().ToString();
    }
    return CheckErrorHasMessage(column.status(), "DecodeFilterColumn");
  }
  if (column->rows != rows || column->type != type) return "a decoded column has another shape";
  if (EncodeFilterColumn(*column) != blob) return "an accepted blob re-encodes to other bytes";
  return "";
}

std::vector<std::string> FilterColumnSeeds() {
  FilterColumnsBuilder builder({{"s", FilterType::kString}, {"i", FilterType::kInt}, {"d", FilterType::kDouble},
                                {"b", FilterType::kBool}, {"l", FilterType::kStringList}});
  constexpr int64_t kRows = 70;  // two bitmap words, the second partly used
  for (int64_t r = 0; r < kRows; ++r) {
    const std::string payload =
        r % 4 == 0 ? "{}"
                   : fmt::format(R"({{"s": "v{}", "i": {}, "d": {}, "b": {}, "l": ["x{}", "héllo"]}})", r % 3, r * 1000 - 7,
                                 r * 0.5, r % 2 == 0 ? "true" : "false", r % 5);
    (void)builder.AddRow(RecordId(r), payload);
  }
  std::vector<std::string> out;
  for (const FilterColumn& c : builder.Finish({}).columns) {
    out.push_back(std::string(1, static_cast<char>(c.type)) + static_cast<char>(kRows) + EncodeFilterColumn(c));
  }
  return out;
}

// Adapts a checker to the FuzzTarget entry signature.
template <std::string (*Checks)(std::string_view, bool&)>
FuzzOutcome Entry(std::string_view data) {
  FuzzOutcome outcome;
  outcome.broken = Checks(data, outcome.accepted);
  return outcome;
}

}  // namespace

const std::map<std::string, std::string>& CelFuzzColumns() {
  static const std::map<std::string, std::string> columns = {
      {"i", "int"}, {"u", "uint"}, {"d", "double"}, {"s", "string"}, {"b", "bytes"}, {"t", "bool"}};
  return columns;
}

const std::vector<FuzzTarget>& AllFuzzTargets() {
  static const std::vector<FuzzTarget> targets = {
      {"manifest", Entry<RunManifestChecks>, ManifestSeeds},
      {"current_pointer", Entry<RunCurrentPointerChecks>, CurrentPointerSeeds},
      {"npy", Entry<RunNpyChecks>, NpySeeds},
      {"input_files", Entry<RunInputFilesChecks>, InputFileSeeds},
      {"cel", Entry<RunCelChecks>, CelSeeds},
      {"filter_column", Entry<RunFilterColumnChecks>, FilterColumnSeeds},
  };
  return targets;
}

const FuzzTarget* FindFuzzTarget(std::string_view name) {
  for (const FuzzTarget& target : AllFuzzTargets()) {
    if (target.name == name) return &target;
  }
  return nullptr;
}

}  // namespace shardvec::fuzz
