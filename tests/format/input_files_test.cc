#include "shardvec/input_files.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "format/npy.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::MakeMatrix;
using testing::MakeNpy;
using testing::RawBytes;

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Helpers

// Each test gets its own directory under the system temp dir, removed afterwards.
class InputFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("shardvec_input_files_test_" + std::to_string(::getpid()) + "_" +
            std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, std::string_view bytes) {
    std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(out.good()) << path;
    return path;
  }

  std::string WriteGzip(const std::string& name, std::string_view bytes) {
    std::string path = (dir_ / name).string();
    gzFile file = gzopen(path.c_str(), "wb");
    EXPECT_NE(file, nullptr) << path;
    EXPECT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    gzclose(file);
    return path;
  }

  fs::path dir_;
};

std::string Label(std::string_view flag, const std::string& path) {
  return std::string(flag) + " '" + path + "'";
}

void ExpectError(const Status& status, StatusCode code, std::string_view message) {
  EXPECT_EQ(status.code(), code) << status.ToString();
  EXPECT_EQ(status.message(), message);
}

void ExpectInvalid(const Status& status, std::string_view message) {
  ExpectError(status, StatusCode::kInvalidArgument, message);
}


void ExpectMatrix(const Matrix& m, int64_t rows, int64_t cols, const std::vector<float>& data) {
  EXPECT_EQ(m.rows, rows);
  EXPECT_EQ(m.cols, cols);
  EXPECT_EQ(m.data, data);
}



void AppendLittleEndian32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void AppendBigEndian32(std::string& out, uint32_t value) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::string MakeFvecs(const std::vector<std::vector<float>>& rows) {
  std::string out;
  for (const auto& row : rows) {
    AppendLittleEndian32(out, static_cast<uint32_t>(row.size()));
    out += RawBytes(row);
  }
  return out;
}

std::string MakeIdxHeader(uint32_t magic, const std::vector<uint32_t>& dims) {
  std::string out;
  AppendBigEndian32(out, magic);
  for (uint32_t dim : dims) AppendBigEndian32(out, dim);
  return out;
}

// Two 2×3 uint8 images.
std::string MakeIdxUint8() {
  std::string out = MakeIdxHeader(0x00000803, {2, 2, 3});
  for (int v : {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255}) {
    out.push_back(static_cast<char>(v));
  }
  return out;
}
const std::vector<float> kIdxUint8Values = {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255};

const RecordId& Id(const std::vector<RecordId>& ids, size_t i) { return ids.at(i); }

// ---------------------------------------------------------------------------------------------
// Missing and unrecognised files

TEST_F(InputFilesTest, MissingFileIsNotFound) {
  std::string path = (dir_ / "v.npy").string();
  ExpectError(LoadVectorInput(path).status(), StatusCode::kNotFound,
              Label("--input", path) + ": file not found");
  EXPECT_EQ(LoadIdsFile(path).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(LoadPayloadsFile(path).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(LoadShardIdsFile(path).status().code(), StatusCode::kNotFound);
}

TEST_F(InputFilesTest, DirectoryIsAnIOError) {
  auto result = LoadVectorInput(dir_.string());
  EXPECT_EQ(result.status().code(), StatusCode::kIOError) << result.status().ToString();
  EXPECT_EQ(result.status().message().rfind(Label("--input", dir_.string()), 0), 0u);
}

TEST_F(InputFilesTest, UnrecognisedFormat) {
  std::string path = Write("x.bin", "hello, not vectors");
  ExpectInvalid(LoadVectorInput(path).status(),
                Label("--input", path) +
                    ": unrecognised input format (expected .npy, .fvecs, IDX (.gz) or .jsonl)");
}

TEST_F(InputFilesTest, FlagNamesTheMessage) {
  std::string path = (dir_ / "q.npy").string();
  ExpectError(LoadVectorInput(path, "--queries").status(), StatusCode::kNotFound,
              Label("--queries", path) + ": file not found");
}

// ---------------------------------------------------------------------------------------------
// .npy

TEST_F(InputFilesTest, LoadsNpy) {
  Matrix m = MakeMatrix(2, 3, {1, 2, 3, 4, 5, 6.5});
  auto input = LoadVectorInput(Write("v.npy", EncodeNpyMatrix(m)));
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ExpectMatrix(input->vectors, 2, 3, m.data);
  EXPECT_FALSE(input->ids.has_value());
  EXPECT_FALSE(input->payloads.has_value());
  EXPECT_FALSE(input->shard_ids.has_value());
}

TEST_F(InputFilesTest, LoadsFloat64NpyByContentWhateverTheExtension) {
  std::string npy = MakeNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }",
                            RawBytes<double>({0.25, -8}));
  auto input = LoadVectorInput(Write("vectors.bin", npy));
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ExpectMatrix(input->vectors, 1, 2, {0.25f, -8.0f});
}

TEST_F(InputFilesTest, LoadsLargeNpy) {
  constexpr int64_t kRows = 20000, kCols = 384;
  Matrix m = MakeMatrix(kRows, kCols, {});
  m.data.resize(kRows * kCols);
  for (size_t i = 0; i < m.data.size(); ++i) m.data[i] = static_cast<float>(i % 1009) * 0.5f;
  auto input = LoadVectorInput(Write("big.npy", EncodeNpyMatrix(m)));
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  EXPECT_EQ(input->vectors.rows, kRows);
  EXPECT_EQ(input->vectors.cols, kCols);
  EXPECT_TRUE(input->vectors.data == m.data);
}

TEST_F(InputFilesTest, NpyErrorsNameTheFile) {
  std::string ints = MakeNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1), }",
                             RawBytes<int32_t>({1}));
  std::string path = Write("v.npy", ints);
  ExpectInvalid(LoadVectorInput(path).status(),
                Label("--input", path) +
                    ": dtype '<i4' is not supported; expected float16, float32 or float64");
  std::string bad_magic = Write("w.npy", "\x93NUMPX garbage");
  ExpectInvalid(LoadVectorInput(bad_magic).status(),
                Label("--input", bad_magic) +
                    ": not a .npy file (bad magic: expected the bytes \\x93NUMPY)");
}

TEST_F(InputFilesTest, LoadsNpyMatrixFilesNamingTheFlag) {
  std::string path = Write("centroids.npy", EncodeNpyMatrix(MakeMatrix(2, 2, {1, 2, 3, 4})));
  auto loaded = LoadMatrixFile(path, "--centroids");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ExpectMatrix(*loaded, 2, 2, {1, 2, 3, 4});

  std::string ints = Write("ints.npy", MakeNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1), }",
                                               RawBytes<int32_t>({1})));
  ExpectInvalid(LoadMatrixFile(ints, "--hyperplanes").status(),
                Label("--hyperplanes", ints) + ": dtype '<i4' is not supported; expected float16, float32 or float64");
  Status missing = LoadMatrixFile((dir_ / "absent.npy").string(), "--centroids").status();
  EXPECT_EQ(missing.code(), StatusCode::kNotFound) << missing.ToString();
  EXPECT_TRUE(missing.message().starts_with("--centroids: ")) << missing.ToString();
  EXPECT_NE(missing.message().find("absent.npy"), std::string::npos) << missing.ToString();
}

// ---------------------------------------------------------------------------------------------
// .fvecs

TEST_F(InputFilesTest, LoadsFvecs) {
  auto input = LoadVectorInput(Write("v.fvecs", MakeFvecs({{1, 2, 3}, {4, 5, 6}, {-1, 0, 1}})));
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ExpectMatrix(input->vectors, 3, 3, {1, 2, 3, 4, 5, 6, -1, 0, 1});
}

TEST_F(InputFilesTest, EmptyFvecsHasNoRows) {
  auto input = LoadVectorInput(Write("v.fvecs", ""));
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ExpectMatrix(input->vectors, 0, 0, {});
}

TEST_F(InputFilesTest, RejectsRaggedFvecs) {
  std::string path = Write("v.fvecs", MakeFvecs({{1, 2, 3, 4}, {1, 2, 3, 4}, {1, 2, 3}}));
  ExpectInvalid(LoadVectorInput(path).status(),
                Label("--input", path) + ": row 2 has dim 3, expected 4 (ragged rows)");
}

TEST_F(InputFilesTest, RejectsTruncatedFvecs) {
  std::string bytes = MakeFvecs({{1, 2}, {3, 4}});
  std::string path = Write("v.fvecs", bytes.substr(0, bytes.size() - 2));
  ExpectInvalid(LoadVectorInput(path).status(),
                Label("--input", path) + ": row 1 is truncated: 6 bytes left, expected 8");
  std::string short_dim = Write("w.fvecs", bytes + std::string("\x02\x00", 2));
  ExpectInvalid(LoadVectorInput(short_dim).status(),
                Label("--input", short_dim) +
                    ": row 2 is truncated: 2 bytes left, expected a 4-byte dim");
}

TEST_F(InputFilesTest, RejectsNonPositiveFvecsDim) {
  std::string bytes;
  AppendLittleEndian32(bytes, 0);
  std::string path = Write("v.fvecs", bytes);
  ExpectInvalid(LoadVectorInput(path).status(),
                Label("--input", path) + ": row 0 has dim 0; expected > 0");
}

// ---------------------------------------------------------------------------------------------
// IDX

TEST_F(InputFilesTest, LoadsRawIdx) {
  auto input = LoadVectorInput(Write("images-idx3-ubyte", MakeIdxUint8()));
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ExpectMatrix(input->vectors, 2, 6, kIdxUint8Values);
}

TEST_F(InputFilesTest, LoadsGzippedIdx) {
  auto input = LoadVectorInput(WriteGzip("images-idx3-ubyte.gz", MakeIdxUint8()));
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ExpectMatrix(input->vectors, 2, 6, kIdxUint8Values);
}

TEST_F(InputFilesTest, LoadsFloat32Idx) {
  std::string bytes = MakeIdxHeader(0x00000D03, {1, 1, 2});
  for (float v : {1.5f, -3.0f}) {
    uint32_t raw;
    std::memcpy(&raw, &v, 4);
    AppendBigEndian32(bytes, raw);
  }
  auto input = LoadVectorInput(Write("f.idx", bytes));
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ExpectMatrix(input->vectors, 1, 2, {1.5f, -3.0f});
}

TEST_F(InputFilesTest, RejectsIdxLabelFiles) {
  std::string labels = MakeIdxHeader(0x00000801, {3}) + std::string("\x01\x02\x03", 3);
  std::string path = WriteGzip("labels-idx1-ubyte.gz", labels);
  ExpectInvalid(LoadVectorInput(path).status(),
                Label("--input", path) +
                    ": IDX magic 0x00000801 is not supported; expected 0x00000803 (uint8 "
                    "images) or 0x00000D03 (float32 images)");
}

TEST_F(InputFilesTest, RejectsTruncatedIdx) {
  std::string bytes = MakeIdxUint8();
  std::string path = Write("images-idx3-ubyte", bytes.substr(0, bytes.size() - 1));
  ExpectInvalid(LoadVectorInput(path).status(),
                Label("--input", path) +
                    ": IDX data is truncated: 2×2×3 uint8 needs more than the 11 bytes present");
  std::string header_only = Write("h-idx3-ubyte", bytes.substr(0, 10));
  ExpectInvalid(LoadVectorInput(header_only).status(),
                Label("--input", header_only) + ": IDX header is truncated");
}

TEST_F(InputFilesTest, RejectsIdxWithExtraBytes) {
  std::string path = Write("images-idx3-ubyte", MakeIdxUint8() + "zz");
  ExpectInvalid(LoadVectorInput(path).status(),
                Label("--input", path) +
                    ": IDX data has 2 unexpected bytes after the 12 bytes of 2×2×3 uint8");
}

TEST_F(InputFilesTest, RejectsTruncatedGzip) {
  std::string gz_path = WriteGzip("full.gz", MakeIdxUint8() + std::string(5000, '\x07'));
  std::ifstream in(gz_path, std::ios::binary);
  std::string compressed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string path = Write("images-idx3-ubyte.gz", compressed.substr(0, compressed.size() - 12));
  auto result = LoadVectorInput(path);
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << result.status().ToString();
  EXPECT_EQ(result.status().message().rfind(
                Label("--input", path) + ": gzip data is corrupt or truncated (", 0),
            0u)
      << result.status().message();
}

// The real Fashion-MNIST test set as Debian's dataset-fashion-mnist ships it. Expected values
// were computed once with Python's gzip module and numpy, independently of this code.
TEST_F(InputFilesTest, LoadsRealFashionMnist) {
  const std::string path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  if (!fs::exists(path)) GTEST_SKIP() << path << " is not installed";
  auto input = LoadVectorInput(path);
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  const Matrix& m = input->vectors;
  ASSERT_EQ(m.rows, 10000);
  ASSERT_EQ(m.cols, 784);
  ASSERT_EQ(m.data.size(), 10000u * 784u);

  std::vector<float> image0_row14(m.row(0) + 14 * 28, m.row(0) + 15 * 28);
  EXPECT_EQ(image0_row14,
            (std::vector<float>{0,   0,   0,   0,   0,   0,   2,   4,   1,   0,
                                0,   0,   98,  136, 110, 109, 110, 162, 135, 144,
                                149, 159, 167, 144, 158, 169, 119, 0}));
  std::vector<float> last_image_row10(m.row(9999) + 10 * 28, m.row(9999) + 11 * 28);
  EXPECT_EQ(last_image_row10,
            (std::vector<float>{0,  0,  0,  0,  1,  5,  19, 57, 17, 0,  0,  56, 80, 45,
                                54, 53, 56, 69, 90, 80, 71, 65, 60, 49, 53, 86, 50, 0}));

  std::vector<int64_t> expected_row_sums = {33456, 100994, 51520, 35377, 62655};
  for (int64_t r = 0; r < 5; ++r) {
    int64_t sum = 0;
    for (int64_t c = 0; c < 784; ++c) sum += static_cast<int64_t>(m.row(r)[c]);
    EXPECT_EQ(sum, expected_row_sums[r]) << "row " << r;
  }
  int64_t total = 0, weighted = 0;
  for (size_t i = 0; i < m.data.size(); ++i) {
    float v = m.data[i];
    ASSERT_TRUE(v >= 0 && v <= 255 && v == static_cast<float>(static_cast<int>(v))) << i;
    total += static_cast<int64_t>(v);
    weighted += static_cast<int64_t>(v) * static_cast<int64_t>(i % 97 + 1);
  }
  EXPECT_EQ(total, 573469082);
  EXPECT_EQ(weighted, 28096959062);  // sensitive to the position of every pixel
}

// ---------------------------------------------------------------------------------------------
// .jsonl vectors

TEST_F(InputFilesTest, LoadsJsonlWithEveryField) {
  std::string path = Write("v.jsonl",
                           "{\"id\": 7, \"vector\": [1, 2.5], "
                           "\"payload\": {\"z\": 1, \"a\": [true, null]}, \"shard_id\": 3}\n"
                           "{\"id\": \"doc-7\", \"vector\": [-1e3, 0], \"payload\": null, "
                           "\"shard_id\": 0}\n");
  auto input = LoadVectorInput(path);
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ExpectMatrix(input->vectors, 2, 2, {1, 2.5, -1000, 0});
  ASSERT_TRUE(input->ids.has_value());
  EXPECT_EQ(*input->ids, (std::vector<RecordId>{int64_t{7}, std::string("doc-7")}));
  ASSERT_TRUE(input->payloads.has_value());
  ASSERT_EQ(input->payloads->size(), 2u);
  EXPECT_EQ((*input->payloads)[0], std::optional<std::string>("{\"z\":1,\"a\":[true,null]}"));
  EXPECT_EQ((*input->payloads)[1], std::nullopt);
  ASSERT_TRUE(input->shard_ids.has_value());
  EXPECT_EQ(*input->shard_ids, (std::vector<int64_t>{3, 0}));
}

TEST_F(InputFilesTest, JsonlOptionalFieldsAreAbsentWhenNoLineHasThem) {
  std::string path = Write("v.jsonl",
                           "\n{\"vector\": [1, 2]}\r\n   \n{\"vector\": [3, 4], \"payload\": null, "
                           "\"extra\": \"ignored\"}");
  auto input = LoadVectorInput(path);
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ExpectMatrix(input->vectors, 2, 2, {1, 2, 3, 4});
  EXPECT_FALSE(input->ids.has_value());
  EXPECT_FALSE(input->payloads.has_value());
  EXPECT_FALSE(input->shard_ids.has_value());
}

TEST_F(InputFilesTest, JsonlRowsWithoutIdGetTheirRowNumber) {
  std::string path = Write("v.jsonl",
                           "{\"vector\": [1]}\n\n{\"id\": \"x\", \"vector\": [2]}\n"
                           "{\"vector\": [3], \"payload\": {}}\n");
  auto input = LoadVectorInput(path);
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ASSERT_TRUE(input->ids.has_value());
  ASSERT_EQ(input->ids->size(), 3u);
  EXPECT_EQ(Id(*input->ids, 0), RecordId(int64_t{0}));
  EXPECT_EQ(Id(*input->ids, 1), RecordId(std::string("x")));
  EXPECT_EQ(Id(*input->ids, 2), RecordId(int64_t{2}));
  ASSERT_TRUE(input->payloads.has_value());
  EXPECT_EQ(*input->payloads,
            (std::vector<std::optional<std::string>>{std::nullopt, std::nullopt, "{}"}));
}

TEST_F(InputFilesTest, EmptyJsonlHasNoRows) {
  auto input = LoadVectorInput(Write("v.jsonl", ""));
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ExpectMatrix(input->vectors, 0, 0, {});
  EXPECT_FALSE(input->ids.has_value());
}

TEST_F(InputFilesTest, JsonlIsRecognisedByContent) {
  auto input = LoadVectorInput(Write("vectors.txt", "{\"vector\": [5, 6]}\n"));
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ExpectMatrix(input->vectors, 1, 2, {5, 6});
}

TEST_F(InputFilesTest, RejectsRaggedJsonlNamingTheLine) {
  std::string lines;
  for (int i = 0; i < 5; ++i) lines += "{\"vector\": [1, 2, 3, 4]}\n";
  lines += "\n{\"vector\": [1, 2, 3]}\n";  // line 7, after a blank line 6
  std::string path = Write("v.jsonl", lines);
  ExpectInvalid(LoadVectorInput(path).status(),
                Label("--input", path) + " line 7: vector has 3 values, expected 4 (ragged rows)");
}

TEST_F(InputFilesTest, RejectsJsonlWithoutVector) {
  std::string path = Write("v.jsonl", "{\"vector\": [1]}\n{\"id\": 2}\n");
  ExpectInvalid(LoadVectorInput(path).status(),
                Label("--input", path) + " line 2: field 'vector' is missing");
}

TEST_F(InputFilesTest, RejectsBadJsonlVectors) {
  struct Case {
    std::string line;
    std::string message;
  };
  std::vector<Case> cases = {
      {"{\"vector\": \"1,2\"}", "field 'vector' is \"1,2\", expected an array of numbers"},
      {"{\"vector\": [1, \"2\"]}", "field 'vector' value at index 1 is \"2\", expected a number"},
      {"{\"vector\": [1, null]}", "field 'vector' value at index 1 is null, expected a number"},
      {"{\"vector\": []}", "field 'vector' is empty"},
      {"[1, 2]", "expected a JSON object, found [1,2]"},
  };
  for (const Case& c : cases) {
    std::string path = Write("v.jsonl", c.line + "\n");
    ExpectInvalid(LoadVectorInput(path).status(), Label("--input", path) + " line 1: " + c.message);
  }
}

TEST_F(InputFilesTest, RejectsInvalidJsonLine) {
  std::string path = Write("v.jsonl", "{\"vector\": [1]}\n{\"vector\": [1,}\n");
  auto status = LoadVectorInput(path).status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message().rfind(Label("--input", path) + " line 2: invalid JSON at column ", 0),
            0u)
      << status.message();
  EXPECT_EQ(status.message().find("json.exception"), std::string::npos) << status.message();
}

TEST_F(InputFilesTest, RejectsBadJsonlIdsPayloadsAndShardIds) {
  struct Case {
    std::string line;
    std::string message;
  };
  std::vector<Case> cases = {
      {"{\"id\": 7.5, \"vector\": [1]}", "field 'id' is 7.5, expected an int64 or a string"},
      {"{\"id\": true, \"vector\": [1]}", "field 'id' is true, expected an int64 or a string"},
      {"{\"id\": 9223372036854775808, \"vector\": [1]}",
       "field 'id' is 9223372036854775808, expected an int64 or a string"},
      {"{\"vector\": [1], \"payload\": [1, 2]}",
       "field 'payload' is [1,2], expected a JSON object or null"},
      {"{\"vector\": [1], \"payload\": \"{}\"}",
       "field 'payload' is \"{}\", expected a JSON object or null"},
      {"{\"vector\": [1], \"shard_id\": \"3\"}", "field 'shard_id' is \"3\", expected an integer"},
      {"{\"vector\": [1], \"shard_id\": 1.5}", "field 'shard_id' is 1.5, expected an integer"},
  };
  for (const Case& c : cases) {
    std::string path = Write("v.jsonl", c.line + "\n");
    ExpectInvalid(LoadVectorInput(path).status(), Label("--input", path) + " line 1: " + c.message);
  }
}

TEST_F(InputFilesTest, RejectsJsonlWhenOnlySomeLinesHaveShardIds) {
  std::string path = Write("v.jsonl",
                           "{\"vector\": [1]}\n{\"vector\": [2], \"shard_id\": 1}\n"
                           "{\"vector\": [3]}\n");
  ExpectInvalid(LoadVectorInput(path).status(),
                Label("--input", path) +
                    " line 1: field 'shard_id' is missing (line 2 has one; give every line a "
                    "shard_id or none)");
}

// ---------------------------------------------------------------------------------------------
// Ids files

TEST_F(InputFilesTest, LoadsTextIds) {
  std::string path = Write("ids.txt", "7\n-3\ndoc-7\r\n007\n\n99999999999999999999\n-\n 5\n");
  auto ids = LoadIdsFile(path);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_EQ(*ids, (std::vector<RecordId>{int64_t{7}, int64_t{-3}, std::string("doc-7"),
                                         int64_t{7}, std::string("99999999999999999999"),
                                         std::string("-"), std::string(" 5")}));
}

TEST_F(InputFilesTest, LoadsNpyIds) {
  std::string npy = MakeNpy("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
                            RawBytes<int64_t>({10, -1, 1LL << 40}));
  auto ids = LoadIdsFile(Write("ids.npy", npy));
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_EQ(*ids, (std::vector<RecordId>{int64_t{10}, int64_t{-1}, int64_t{1LL << 40}}));
}

TEST_F(InputFilesTest, RejectsNonIntegerNpyIds) {
  std::string npy = MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                            RawBytes<float>({1, 1.5}));
  std::string path = Write("ids.npy", npy);
  ExpectInvalid(LoadIdsFile(path).status(),
                Label("--ids", path) + ": value at index 1 is 1.5, not an integer");
}

TEST_F(InputFilesTest, LoadsJsonlIds) {
  auto ids = LoadIdsFile(Write("ids.jsonl", "5\n\"a\"\n\n-2\n"));
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_EQ(*ids, (std::vector<RecordId>{int64_t{5}, std::string("a"), int64_t{-2}}));
}

TEST_F(InputFilesTest, LoadsJsonArrayIds) {
  auto ids = LoadIdsFile(Write("ids.json", " [1, \"b\"]"));
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_EQ(*ids, (std::vector<RecordId>{int64_t{1}, std::string("b")}));
}

TEST_F(InputFilesTest, RejectsBadJsonIds) {
  std::string path = Write("ids.jsonl", "5\n7.5\n");
  ExpectInvalid(LoadIdsFile(path).status(),
                Label("--ids", path) + " line 2: 7.5 is not an int64 or a string id");
  std::string array_path = Write("ids.json", "[1, {}]");
  ExpectInvalid(LoadIdsFile(array_path).status(),
                Label("--ids", array_path) + ": item 1 is {}, expected an int64 or a string id");
}

// ---------------------------------------------------------------------------------------------
// Payload files

TEST_F(InputFilesTest, LoadsPayloads) {
  auto payloads = LoadPayloadsFile(
      Write("p.jsonl", "{\"b\": 1, \"a\": {\"y\": \"é\", \"x\": 2}}\nnull\n\n{}\n"));
  ASSERT_TRUE(payloads.ok()) << payloads.status().ToString();
  EXPECT_EQ(*payloads, (std::vector<std::optional<std::string>>{
                           "{\"b\":1,\"a\":{\"y\":\"é\",\"x\":2}}", std::nullopt, "{}"}));
}

TEST_F(InputFilesTest, LoadsJsonArrayPayloads) {
  auto payloads = LoadPayloadsFile(Write("p.json", "[{\"k\": 1}, null]"));
  ASSERT_TRUE(payloads.ok()) << payloads.status().ToString();
  EXPECT_EQ(*payloads, (std::vector<std::optional<std::string>>{"{\"k\":1}", std::nullopt}));
}

TEST_F(InputFilesTest, RejectsBadPayloads) {
  std::string path = Write("p.jsonl", "{}\n[1, 2]\n");
  ExpectInvalid(LoadPayloadsFile(path).status(),
                Label("--payloads", path) + " line 2: [1,2] is not a JSON object or null");
  std::string broken = Write("q.jsonl", "{\"a\": }\n");
  auto status = LoadPayloadsFile(broken).status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message().rfind(Label("--payloads", broken) + " line 1: invalid JSON", 0), 0u)
      << status.message();
}

// ---------------------------------------------------------------------------------------------
// Shard id files

TEST_F(InputFilesTest, LoadsTextShardIds) {
  auto shard_ids = LoadShardIdsFile(Write("s.txt", "0\n3\r\n\n 2 \n-1\n"));
  ASSERT_TRUE(shard_ids.ok()) << shard_ids.status().ToString();
  EXPECT_EQ(*shard_ids, (std::vector<int64_t>{0, 3, 2, -1}));
}

TEST_F(InputFilesTest, LoadsNpyShardIds) {
  std::string npy = MakeNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (3, 1), }",
                            RawBytes<int32_t>({4, 0, 2}));
  auto shard_ids = LoadShardIdsFile(Write("s.npy", npy));
  ASSERT_TRUE(shard_ids.ok()) << shard_ids.status().ToString();
  EXPECT_EQ(*shard_ids, (std::vector<int64_t>{4, 0, 2}));
}

TEST_F(InputFilesTest, RejectsBadShardIds) {
  std::string path = Write("s.txt", "1\nx7\n");
  ExpectInvalid(LoadShardIdsFile(path).status(),
                Label("--shard-ids", path) + " line 2: 'x7' is not an integer shard id");
  std::string npy_path =
      Write("s.npy", MakeNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2), }",
                             RawBytes<int32_t>({1, 2})));
  ExpectInvalid(LoadShardIdsFile(npy_path).status(),
                Label("--shard-ids", npy_path) +
                    ": shape (1, 2) is not supported; expected a 1-D array (or n×1)");
}

// ---------------------------------------------------------------------------------------------
// CEL routing contexts and routing tokens

TEST_F(InputFilesTest, CelJsonlLinesCarryRoutingContexts) {
  std::string path = Write("v.jsonl",
                           "{\"vector\": [1], \"routing_context\": {\"region\": \"eu\", \"n\": 5, "
                           "\"big\": 18446744073709551615, \"x\": 2.5, \"on\": true, "
                           "\"key\": {\"__bytes_hex__\": \"00ff\"}}}\n"
                           "\n{\"vector\": [2], \"routing_context\": {}}\n");
  auto input = LoadVectorInput(path);
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  ASSERT_TRUE(input->routing_contexts.has_value());
  ASSERT_EQ(input->routing_contexts->size(), 2u);
  const RoutingContext& first = (*input->routing_contexts)[0];
  EXPECT_EQ(first.at("region"), RoutingValue(std::string("eu")));
  EXPECT_EQ(first.at("n"), RoutingValue(int64_t{5}));
  EXPECT_EQ(first.at("big"), RoutingValue(uint64_t{18446744073709551615u}));
  EXPECT_EQ(first.at("x"), RoutingValue(2.5));
  EXPECT_EQ(first.at("on"), RoutingValue(true));
  EXPECT_EQ(first.at("key"), RoutingValue(Bytes{std::string("\x00\xff", 2)}));
  EXPECT_TRUE((*input->routing_contexts)[1].empty());

  auto none = LoadVectorInput(Write("n.jsonl", "{\"vector\": [1]}\n"));
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->routing_contexts.has_value());
}

TEST_F(InputFilesTest, CelRejectsJsonlRoutingContextsNamingTheLineAndField) {
  std::string some = Write("s.jsonl",
                           "{\"vector\": [1], \"routing_context\": {\"r\": \"eu\"}}\n"
                           "{\"vector\": [2]}\n");
  ExpectInvalid(LoadVectorInput(some).status(),
                Label("--input", some) +
                    " line 2: field 'routing_context' is missing (line 1 has one; give every line a "
                    "routing_context or none)");
  std::string scalar = Write("a.jsonl", "{\"vector\": [1], \"routing_context\": \"eu\"}\n");
  ExpectInvalid(LoadVectorInput(scalar).status(),
                Label("--input", scalar) +
                    " line 1: field 'routing_context' is \"eu\", expected a JSON object of variable -> value");
  std::string nested = Write("b.jsonl", "{\"vector\": [1], \"routing_context\": {\"r\": [1]}}\n");
  ExpectInvalid(LoadVectorInput(nested).status(),
                Label("--input", nested) +
                    " line 1: routing_context['r'] is [1]; expected a number, string, bool, null or "
                    "{\"__bytes_hex__\": \"<hex>\"}");
  std::string hex = Write("c.jsonl", "{\"vector\": [1], \"routing_context\": {\"k\": {\"__bytes_hex__\": \"0g\"}}}\n");
  EXPECT_NE(LoadVectorInput(hex).status().message().find(Label("--input", hex) + " line 1: routing_context['k']"),
            std::string::npos)
      << LoadVectorInput(hex).status().message();
}

TEST_F(InputFilesTest, CelLoadsRoutingContextFiles) {
  auto lines = LoadRoutingContextsFile(Write("c.jsonl", "{\"t\": \"a\"}\r\n\n{\"t\": \"b\", \"n\": -3}\n"));
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ((*lines)[0].at("t"), RoutingValue(std::string("a")));
  EXPECT_EQ((*lines)[1].at("n"), RoutingValue(int64_t{-3}));

  auto array = LoadRoutingContextsFile(Write("c.json", "[{\"t\": \"a\"}, {\"t\": {\"__bytes_hex__\": \"61\"}}]"));
  ASSERT_TRUE(array.ok()) << array.status().ToString();
  ASSERT_EQ(array->size(), 2u);
  EXPECT_EQ((*array)[1].at("t"), RoutingValue(Bytes{"a"}));

  std::string bad_line = Write("d.jsonl", "{\"t\": \"a\"}\nnull\n");
  ExpectInvalid(LoadRoutingContextsFile(bad_line).status(),
                Label("--routing-context-file", bad_line) +
                    " line 2: expected a JSON object of variable -> value, found null");
  std::string bad_value = Write("e.jsonl", "{\"t\": {\"x\": 1}}\n");
  ExpectInvalid(LoadRoutingContextsFile(bad_value).status(),
                Label("--routing-context-file", bad_value) +
                    " line 1: routing_context['t'] is {\"x\":1}; expected a number, string, bool, null or "
                    "{\"__bytes_hex__\": \"<hex>\"}");
  std::string bad_item = Write("f.json", "[{}, 3]");
  ExpectInvalid(LoadRoutingContextsFile(bad_item).status(),
                Label("--routing-context-file", bad_item) +
                    ": item 1: expected a JSON object of variable -> value, found 3");
  std::string bad_json = Write("g.jsonl", "{\"t\": }\n");
  EXPECT_NE(LoadRoutingContextsFile(bad_json).status().message().find(" line 1: invalid JSON at column"),
            std::string::npos);
  EXPECT_EQ(LoadRoutingContextsFile((dir_ / "missing.jsonl").string()).status().code(), StatusCode::kNotFound);
}

TEST_F(InputFilesTest, CelLoadsRoutingValuesFiles) {
  auto values = LoadRoutingValuesFile(Write("v.json", "[3, \"eu\", {\"__bytes_hex__\": \"6162\"}]"));
  ASSERT_TRUE(values.ok()) << values.status().ToString();
  EXPECT_EQ(*values, (std::vector<RoutingValue>{int64_t{3}, std::string("eu"), Bytes{"ab"}}));

  std::string object = Write("o.json", "{\"eu\": 0}");
  ExpectInvalid(LoadRoutingValuesFile(object).status(),
                Label("--routing-values-file", object) +
                    ": expected a JSON array of routing tokens (ints, strings or {\"__bytes_hex__\": "
                    "\"<hex>\"}), found {\"eu\":0}");
  std::string nested = Write("n.json", "[\"eu\", [1]]");
  ExpectInvalid(LoadRoutingValuesFile(nested).status(),
                Label("--routing-values-file", nested) +
                    ": routing_values[1] is [1]; expected a number, string, bool, null or "
                    "{\"__bytes_hex__\": \"<hex>\"}");
}

}  // namespace
}  // namespace shardvec
