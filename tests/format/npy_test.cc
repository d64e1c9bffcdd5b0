#include "format/npy.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <limits>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>
#include "shardvec/limits.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::MakeMatrix;
using testing::MakeNpy;
using testing::RawBytes;

// ---------------------------------------------------------------------------------------------
// Bytes written by numpy 2.2.6 (np.save, or np.lib.format.write_array for versions 2.0 / 3.0),
// generated once and embedded so the test needs no Python. Values of the 2×3 arrays:
// [[-1, -0.5, 0], [0.5, 1, 1.5]] (the float64 one adds 1e-9).

constexpr std::string_view kNumpy2x3F4 =
    "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200a000080bf000000"
    "bf000000000000003f0000803f0000c03f";
constexpr std::string_view kNumpy1x1F4 =
    "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028312c2031292c207d202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200a00005040";
constexpr std::string_view kNumpy0x4F4 =
    "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028302c2034292c207d202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200a";
constexpr std::string_view kNumpy0xWideF4 =  // shape (0, 123456789)
    "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028302c20313233343536373839292c207d20202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200a";
constexpr std::string_view kNumpy1234567x0F4 =
    "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028313233343536372c2030292c207d202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200a";
constexpr std::string_view kNumpy2x3BigEndianF4 =
    "934e554d5059010076007b276465736372273a20273e6634272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200abf800000bf0000"
    "00000000003f0000003f8000003fc00000";
constexpr std::string_view kNumpy2x3F8 =
    "934e554d5059010076007b276465736372273a20273c6638272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200aa18f76ffffffef"
    "bf411fedfeffffdfbf95d626e80b2e113e5f7089000000e03f30b844000000f03f30b844000000f83f";
constexpr std::string_view kNumpy2x3FortranF4 =
    "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2054"
    "7275652c20277368617065273a2028322c2033292c207d20202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200a000080bf000000"
    "3f000000bf0000803f000000000000c03f";
constexpr std::string_view kNumpy2x3Version2 =
    "934e554d50590200740000007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a"
    "2046616c73652c20277368617065273a2028322c2033292c207d20202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200a000080bf000000"
    "bf000000000000003f0000803f0000c03f";
constexpr std::string_view kNumpy2x3Version3 =
    "934e554d50590300740000007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a"
    "2046616c73652c20277368617065273a2028322c2033292c207d20202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200a000080bf000000"
    "bf000000000000003f0000803f0000c03f";
constexpr std::string_view kNumpyI4 =  // [7, -2, 40000]
    "934e554d5059010076007b276465736372273a20273c6934272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200a07000000feffff"
    "ff409c0000";
constexpr std::string_view kNumpyU1 =  // [0, 255, 3]
    "934e554d5059010076007b276465736372273a20277c7531272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200a00ff03";
constexpr std::string_view kNumpyBigEndianI8Column =  // [[5], [-9000000000]]
    "934e554d5059010076007b276465736372273a20273e6938272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028322c2031292c207d202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020200a00000000000000"
    "05fffffffde78ee600";

const std::vector<float> k2x3Values = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f};
constexpr std::string_view kWhat = "--centroids 'c.npy'";

std::string FromHex(std::string_view hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return bytes;
}




void ExpectInvalid(const Status& status, std::string_view expected_message) {
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_EQ(status.message(), expected_message);
}

void ExpectInvalidContaining(const Status& status, std::string_view fragment) {
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_EQ(status.message().rfind(kWhat, 0), 0u) << status.message();
  EXPECT_NE(status.message().find(fragment), std::string::npos) << status.message();
}

// ---------------------------------------------------------------------------------------------
// EncodeNpyMatrix

TEST(NpyEncodeTest, MatchesNumpyFor2x3) {
  EXPECT_EQ(EncodeNpyMatrix(MakeMatrix(2, 3, k2x3Values)), FromHex(kNumpy2x3F4));
}

TEST(NpyEncodeTest, MatchesNumpyFor1x1) {
  EXPECT_EQ(EncodeNpyMatrix(MakeMatrix(1, 1, {3.25f})), FromHex(kNumpy1x1F4));
}

TEST(NpyEncodeTest, MatchesNumpyForEmptyShapes) {
  EXPECT_EQ(EncodeNpyMatrix(MakeMatrix(0, 4, {})), FromHex(kNumpy0x4F4));
  EXPECT_EQ(EncodeNpyMatrix(MakeMatrix(0, 123456789, {})), FromHex(kNumpy0xWideF4));
  EXPECT_EQ(EncodeNpyMatrix(MakeMatrix(1234567, 0, {})), FromHex(kNumpy1234567x0F4));
}

TEST(NpyEncodeTest, HeaderIsAlignedTo64BytesForManyShapes) {
  for (int64_t rows : {0, 1, 9, 10, 999, 100000}) {
    for (int64_t cols : {0, 1, 12, 384, 4096}) {
      if (rows * cols > 1000000) continue;
      Matrix m = MakeMatrix(rows, cols, std::vector<float>(rows * cols, 1.0f));
      std::string bytes = EncodeNpyMatrix(m);
      size_t header_size = bytes.size() - m.data.size() * sizeof(float);
      EXPECT_EQ(header_size % 64, 0u) << rows << "x" << cols;
      EXPECT_EQ(bytes[header_size - 1], '\n') << rows << "x" << cols;
    }
  }
}

TEST(NpyEncodeTest, RoundTripsThroughParse) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  Matrix m = MakeMatrix(17, 33, {});
  for (int i = 0; i < 17 * 33; ++i) m.data.push_back(normal(rng));
  auto parsed = ParseNpyMatrix(EncodeNpyMatrix(m), kWhat);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->rows, 17);
  EXPECT_EQ(parsed->cols, 33);
  EXPECT_EQ(parsed->data, m.data);
}

TEST(NpyEncodeTest, EmptyMatrixRoundTrips) {
  auto parsed = ParseNpyMatrix(EncodeNpyMatrix(MakeMatrix(0, 4, {})), kWhat);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->rows, 0);
  EXPECT_EQ(parsed->cols, 4);
  EXPECT_TRUE(parsed->data.empty());
}

// ---------------------------------------------------------------------------------------------
// ParseNpyMatrix: what it accepts

void ExpectMatrix2x3(const Result<Matrix>& parsed, const std::vector<float>& values) {
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->rows, 2);
  EXPECT_EQ(parsed->cols, 3);
  EXPECT_EQ(parsed->data, values);
}

TEST(NpyParseMatrixTest, ReadsLittleEndianFloat32) {
  ExpectMatrix2x3(ParseNpyMatrix(FromHex(kNumpy2x3F4), kWhat), k2x3Values);
}

TEST(NpyParseMatrixTest, ReadsBigEndianFloat32) {
  ExpectMatrix2x3(ParseNpyMatrix(FromHex(kNumpy2x3BigEndianF4), kWhat), k2x3Values);
}

TEST(NpyParseMatrixTest, NarrowsFloat64ToFloat32) {
  std::vector<float> expected = k2x3Values;
  expected[2] = static_cast<float>(1e-9);
  ExpectMatrix2x3(ParseNpyMatrix(FromHex(kNumpy2x3F8), kWhat), expected);
}

TEST(NpyParseMatrixTest, ReadsBigEndianFloat64) {
  std::vector<double> values = {1.5, -2.25};
  std::string data;
  for (double v : values) {
    uint64_t raw;
    std::memcpy(&raw, &v, 8);
    raw = __builtin_bswap64(raw);
    data.append(reinterpret_cast<const char*>(&raw), 8);
  }
  auto parsed = ParseNpyMatrix(
      MakeNpy("{'descr': '>f8', 'fortran_order': False, 'shape': (1, 2), }", data), kWhat);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->data, (std::vector<float>{1.5f, -2.25f}));
}

TEST(NpyParseMatrixTest, ReadsVersions2And3) {
  ExpectMatrix2x3(ParseNpyMatrix(FromHex(kNumpy2x3Version2), kWhat), k2x3Values);
  ExpectMatrix2x3(ParseNpyMatrix(FromHex(kNumpy2x3Version3), kWhat), k2x3Values);
}

// A version 2 header may declare up to 4 GiB; more than kMaxNpyHeaderBytes is refused, whatever follows.
TEST(NpyParseMatrixTest, HeaderLongerThanTheLimitIsRefused) {
  for (uint32_t declared : {static_cast<uint32_t>(kMaxNpyHeaderBytes) + 1, uint32_t{0xffffffff}}) {
    std::string bytes("\x93NUMPY\x02\x00", 8);
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((declared >> (8 * i)) & 0xff));
    bytes.append(std::string(static_cast<size_t>(kMaxNpyHeaderBytes) + 16, ' '));
    auto parsed = ParseNpyMatrix(bytes, kWhat);
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(fmt::format("declares {} bytes, more than the limit of {}", declared,
                                                         kMaxNpyHeaderBytes)),
              std::string::npos)
        << parsed.status().message();
  }
}

TEST(NpyParseMatrixTest, ReadsOneDimensionalArrayAsOneRow) {
  auto parsed = ParseNpyMatrix(
      MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
              RawBytes<float>({1, 2, 3})),
      kWhat);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->rows, 1);
  EXPECT_EQ(parsed->cols, 3);
  EXPECT_EQ(parsed->data, (std::vector<float>{1, 2, 3}));
}

TEST(NpyParseMatrixTest, AcceptsKeysInAnyOrderDoubleQuotesAndPython2Longs) {
  auto parsed = ParseNpyMatrix(
      MakeNpy("{\"shape\": (1L, 2L), \"fortran_order\": False, \"descr\": \"<f4\"}",
              RawBytes<float>({4, 5})),
      kWhat);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->rows, 1);
  EXPECT_EQ(parsed->data, (std::vector<float>{4, 5}));
}

// ---------------------------------------------------------------------------------------------
// ParseNpyMatrix: what it rejects

TEST(NpyParseMatrixTest, RejectsIntegerDtypeNamingIt) {
  ExpectInvalid(ParseNpyMatrix(FromHex(kNumpyI4), kWhat).status(),
                "--centroids 'c.npy': dtype '<i4' is not supported; expected float16, float32 or float64");
}

// float16 vectors widen to float32 exactly, in either byte order: 1.0, -2.5, 65504 (the largest
// half), 2^-24 (the smallest subnormal), 2^-14 (the smallest normal), -0 and +infinity.
TEST(NpyParseMatrixTest, WidensHalfFloatsExactly) {
  const std::vector<uint16_t> halves = {0x3c00, 0xc100, 0x7bff, 0x0001, 0x0400, 0x8000, 0x7c00};
  const std::vector<float> expected = {1.0f, -2.5f, 65504.0f, 0x1p-24f, 0x1p-14f, -0.0f,
                                       std::numeric_limits<float>::infinity()};
  std::string little = RawBytes<uint16_t>(halves), big;
  for (uint16_t h : halves) {
    big.push_back(static_cast<char>(h >> 8));
    big.push_back(static_cast<char>(h & 0xff));
  }
  for (const auto& [descr, data] : {std::pair<std::string, std::string>{"<f2", little}, {">f2", big}}) {
    auto parsed = ParseNpyMatrix(
        MakeNpy(fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': (1, 7), }}", descr), data), kWhat);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(parsed->cols, 7);
    ASSERT_EQ(parsed->data.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(std::bit_cast<uint32_t>(parsed->data[i]), std::bit_cast<uint32_t>(expected[i])) << descr << " " << i;
    }
  }
}

TEST(NpyParseMatrixTest, RejectsStructuredDtypes) {
  ExpectInvalidContaining(
      ParseNpyMatrix(
          MakeNpy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "abcd"),
          kWhat)
          .status(),
      "structured dtypes are not supported");
}

TEST(NpyParseMatrixTest, RejectsFortranOrder) {
  ExpectInvalidContaining(ParseNpyMatrix(FromHex(kNumpy2x3FortranF4), kWhat).status(),
                          "fortran_order True is not supported");
}

TEST(NpyParseMatrixTest, RejectsThreeAndZeroDimensions) {
  ExpectInvalid(
      ParseNpyMatrix(MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1), }",
                             RawBytes<float>({1})),
                     kWhat)
          .status(),
      "--centroids 'c.npy': shape (1, 1, 1) is not supported; expected a 2-D array");
  ExpectInvalidContaining(
      ParseNpyMatrix(MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                             RawBytes<float>({1})),
                     kWhat)
          .status(),
      "shape () is not supported");
}

TEST(NpyParseMatrixTest, RejectsTruncatedData) {
  std::string bytes = FromHex(kNumpy2x3F4);
  bytes.pop_back();
  ExpectInvalid(ParseNpyMatrix(bytes, kWhat).status(),
                "--centroids 'c.npy': data is truncated: shape (2, 3) of '<f4' needs 24 bytes, "
                "found 23");
}

TEST(NpyParseMatrixTest, RejectsTrailingBytes) {
  ExpectInvalidContaining(ParseNpyMatrix(FromHex(kNumpy2x3F4) + "xx", kWhat).status(),
                          "2 unexpected bytes after the data");
}

TEST(NpyParseMatrixTest, RejectsTruncatedHeader) {
  std::string bytes = FromHex(kNumpy2x3F4).substr(0, 60);
  ExpectInvalidContaining(ParseNpyMatrix(bytes, kWhat).status(), "header is truncated");
  ExpectInvalidContaining(ParseNpyMatrix(bytes.substr(0, 7), kWhat).status(),
                          "header is truncated");
}

TEST(NpyParseMatrixTest, RejectsBadMagic) {
  std::string bytes = FromHex(kNumpy2x3F4);
  bytes[1] = 'X';
  ExpectInvalid(ParseNpyMatrix(bytes, kWhat).status(),
                "--centroids 'c.npy': not a .npy file (bad magic: expected the bytes \\x93NUMPY)");
  ExpectInvalidContaining(ParseNpyMatrix("", kWhat).status(), "bad magic");
}

TEST(NpyParseMatrixTest, RejectsUnknownVersion) {
  std::string bytes = FromHex(kNumpy2x3F4);
  bytes[6] = '\x04';
  ExpectInvalidContaining(ParseNpyMatrix(bytes, kWhat).status(), ".npy version 4.0");
}

TEST(NpyParseMatrixTest, RejectsMalformedHeaders) {
  ExpectInvalidContaining(
      ParseNpyMatrix(MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", ""),
                     kWhat)
          .status(),
      "header is malformed");
  ExpectInvalidContaining(
      ParseNpyMatrix(MakeNpy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}", ""),
                     kWhat)
          .status(),
      "unexpected word 'Maybe'");
  ExpectInvalidContaining(
      ParseNpyMatrix(MakeNpy("{'descr': '<f4', 'shape': (2,)}", ""), kWhat).status(),
      "has no 'fortran_order'");
  ExpectInvalidContaining(
      ParseNpyMatrix(MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2)}", ""),
                     kWhat)
          .status(),
      "non-negative integers");
}

TEST(NpyParseMatrixTest, RejectsShapesTooLargeToAddress) {
  ExpectInvalidContaining(
      ParseNpyMatrix(MakeNpy("{'descr': '<f4', 'fortran_order': False, "
                             "'shape': (4611686018427387904, 4611686018427387904)}",
                             ""),
                     kWhat)
          .status(),
      "is too large");
}

// ---------------------------------------------------------------------------------------------
// ParseNpyIntegers

TEST(NpyParseIntegersTest, ReadsNumpyInt32) {
  auto parsed = ParseNpyIntegers(FromHex(kNumpyI4), kWhat);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, (std::vector<int64_t>{7, -2, 40000}));
}

TEST(NpyParseIntegersTest, ReadsNumpyUint8) {
  auto parsed = ParseNpyIntegers(FromHex(kNumpyU1), kWhat);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, (std::vector<int64_t>{0, 255, 3}));
}

TEST(NpyParseIntegersTest, ReadsBigEndianInt64Column) {
  auto parsed = ParseNpyIntegers(FromHex(kNumpyBigEndianI8Column), kWhat);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, (std::vector<int64_t>{5, -9000000000}));
}

TEST(NpyParseIntegersTest, ReadsEveryIntegerWidth) {
  auto parse = [](std::string_view descr, std::string data) {
    return ParseNpyIntegers(
        MakeNpy(std::string("{'descr': '") + std::string(descr) +
                    "', 'fortran_order': False, 'shape': (2,), }",
                data),
        kWhat);
  };
  struct Case {
    std::string_view descr;
    std::string data;
    std::vector<int64_t> expected;
  };
  std::vector<Case> cases = {
      {"|i1", RawBytes<int8_t>({-128, 127}), {-128, 127}},
      {"<i1", RawBytes<int8_t>({-1, 5}), {-1, 5}},
      {"<u1", RawBytes<uint8_t>({200, 1}), {200, 1}},
      {"<i2", RawBytes<int16_t>({-30000, 2}), {-30000, 2}},
      {"<u2", RawBytes<uint16_t>({65535, 0}), {65535, 0}},
      {"<u4", RawBytes<uint32_t>({4000000000u, 9}), {4000000000, 9}},
      {"<i8", RawBytes<int64_t>({INT64_MIN, INT64_MAX}), {INT64_MIN, INT64_MAX}},
      {"<u8", RawBytes<uint64_t>({uint64_t{INT64_MAX}, 3}), {INT64_MAX, 3}},
      {"<f4", RawBytes<float>({3.0f, -16777216.0f}), {3, -16777216}},
      {"<f8", RawBytes<double>({12.0, -0.0}), {12, 0}},
  };
  for (const Case& c : cases) {
    auto parsed = parse(c.descr, c.data);
    ASSERT_TRUE(parsed.ok()) << c.descr << ": " << parsed.status().ToString();
    EXPECT_EQ(*parsed, c.expected) << c.descr;
  }
}

TEST(NpyParseIntegersTest, ReadsEmptyArray) {
  auto parsed =
      ParseNpyIntegers(MakeNpy("{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }", ""),
                       kWhat);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->empty());
}

TEST(NpyParseIntegersTest, RejectsFractionalFloats) {
  ExpectInvalid(ParseNpyIntegers(MakeNpy("{'descr': '<f8', 'fortran_order': False, "
                                         "'shape': (2,), }",
                                         RawBytes<double>({1.0, 2.5})),
                                 kWhat)
                    .status(),
                "--centroids 'c.npy': value at index 1 is 2.5, not an integer");
}

TEST(NpyParseIntegersTest, RejectsNanAndHugeFloats) {
  for (double bad : {std::nan(""), 1e19, -1e300}) {
    ExpectInvalidContaining(ParseNpyIntegers(MakeNpy("{'descr': '<f8', 'fortran_order': False, "
                                                     "'shape': (1,), }",
                                                     RawBytes<double>({bad})),
                                             kWhat)
                                .status(),
                            "not an integer");
  }
}

TEST(NpyParseIntegersTest, RejectsUint64AboveInt64) {
  ExpectInvalidContaining(ParseNpyIntegers(MakeNpy("{'descr': '<u8', 'fortran_order': False, "
                                                   "'shape': (1,), }",
                                                   RawBytes<uint64_t>({uint64_t{1} << 63})),
                                           kWhat)
                              .status(),
                          "value at index 0 is 9223372036854775808, larger than int64");
}

TEST(NpyParseIntegersTest, RejectsMatricesAndOtherDtypes) {
  ExpectInvalid(ParseNpyIntegers(MakeNpy("{'descr': '<i4', 'fortran_order': False, "
                                         "'shape': (2, 3), }",
                                         RawBytes<int32_t>({1, 2, 3, 4, 5, 6})),
                                 kWhat)
                    .status(),
                "--centroids 'c.npy': shape (2, 3) is not supported; expected a 1-D array "
                "(or n×1)");
  ExpectInvalid(ParseNpyIntegers(MakeNpy("{'descr': '|b1', 'fortran_order': False, "
                                         "'shape': (1,), }",
                                         "\x01"),
                                 kWhat)
                    .status(),
                "--centroids 'c.npy': dtype '|b1' is not supported; expected an integer array");
  ExpectInvalidContaining(ParseNpyIntegers(MakeNpy("{'descr': '<i4', 'fortran_order': False, "
                                                   "'shape': (2,), }",
                                                   RawBytes<int32_t>({1})),
                                           kWhat)
                              .status(),
                          "data is truncated");
}

}  // namespace
}  // namespace shardvec
