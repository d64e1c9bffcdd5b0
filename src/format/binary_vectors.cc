#include "format/binary_vectors.h"

#include <fmt/format.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

namespace shardvec {
namespace {

Status Invalid(std::string_view label, std::string_view detail) {
  return Status::InvalidArgument(fmt::format("{}: {}", label, detail));
}

// ---------------------------------------------------------------------------------------------
// .fvecs

uint32_t LoadLittleEndian32(const char* p) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return value;
}

}  // namespace

Result<Matrix> ParseFvecs(std::string_view bytes, std::string_view label) {
  Matrix m;
  size_t offset = 0;
  while (offset < bytes.size()) {
    int64_t row = m.rows;
    if (bytes.size() - offset < 4) {
      return Invalid(label, fmt::format("row {} is truncated: {} bytes left, expected a 4-byte dim",
                                        row, bytes.size() - offset));
    }
    int32_t dim = static_cast<int32_t>(LoadLittleEndian32(bytes.data() + offset));
    if (dim <= 0) return Invalid(label, fmt::format("row {} has dim {}; expected > 0", row, dim));
    if (row > 0 && dim != m.cols) {
      return Invalid(label, fmt::format("row {} has dim {}, expected {} (ragged rows)", row, dim,
                                        m.cols));
    }
    size_t row_bytes = static_cast<size_t>(dim) * sizeof(float);
    offset += 4;
    if (bytes.size() - offset < row_bytes) {
      return Invalid(label, fmt::format("row {} is truncated: {} bytes left, expected {}", row,
                                        bytes.size() - offset, row_bytes));
    }
    if (row == 0) {
      m.cols = dim;
      m.data.reserve(bytes.size() / (row_bytes + 4) * static_cast<size_t>(dim));
    }
    size_t start = m.data.size();
    m.data.resize(start + static_cast<size_t>(dim));
    std::memcpy(m.data.data() + start, bytes.data() + offset, row_bytes);  // little-endian host
    offset += row_bytes;
    ++m.rows;
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// IDX (the MNIST / Fashion-MNIST container): big-endian magic 00 00 <type> <ndims>, then ndims
// big-endian uint32 sizes, then the data in C order.

namespace {

constexpr uint8_t kIdxUint8 = 0x08;
constexpr uint8_t kIdxFloat32 = 0x0D;

uint32_t LoadBigEndian32(const char* p) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

}  // namespace

bool LooksLikeIdx(std::string_view bytes) {
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) return false;
  uint8_t type = static_cast<uint8_t>(bytes[2]);
  uint8_t ndims = static_cast<uint8_t>(bytes[3]);
  bool known_type = type == 0x08 || type == 0x09 || (type >= 0x0B && type <= 0x0E);
  return known_type && ndims >= 1 && ndims <= 4;
}

Result<Matrix> ParseIdx(std::string_view bytes, std::string_view label) {
  uint32_t magic = LoadBigEndian32(bytes.data());
  uint8_t type = static_cast<uint8_t>(bytes[2]);
  if (bytes[3] != 3 || (type != kIdxUint8 && type != kIdxFloat32)) {
    return Invalid(label, fmt::format("IDX magic 0x{:08X} is not supported; expected 0x00000803 "
                                      "(uint8 images) or 0x00000D03 (float32 images)",
                                      magic));
  }
  constexpr size_t kHeaderSize = 4 + 3 * 4;
  if (bytes.size() < kHeaderSize) return Invalid(label, "IDX header is truncated");
  uint64_t n = LoadBigEndian32(bytes.data() + 4);
  uint64_t image_rows = LoadBigEndian32(bytes.data() + 8);
  uint64_t image_cols = LoadBigEndian32(bytes.data() + 12);
  size_t item_size = type == kIdxUint8 ? 1 : 4;
  uint64_t cols = image_rows * image_cols;  // < 2^64: both factors < 2^32
  std::string_view data = bytes.substr(kHeaderSize);
  std::string shape = fmt::format("{}×{}×{} {}", n, image_rows, image_cols,
                                  type == kIdxUint8 ? "uint8" : "float32");
  // n * cols * item_size > data.size(), written so it cannot overflow.
  if (n != 0 && cols > data.size() / item_size / n) {
    return Invalid(label, fmt::format("IDX data is truncated: {} needs more than the {} bytes "
                                      "present",
                                      shape, data.size()));
  }
  uint64_t needed = n * cols * item_size;
  if (data.size() != needed) {
    return Invalid(label, fmt::format("IDX data has {} unexpected bytes after the {} bytes of {}",
                                      data.size() - needed, needed, shape));
  }
  Matrix m;
  m.rows = static_cast<int64_t>(n);
  m.cols = static_cast<int64_t>(cols);
  m.data.resize(n * cols);
  for (size_t i = 0; i < m.data.size(); ++i) {
    m.data[i] = type == kIdxUint8
                    ? static_cast<float>(static_cast<unsigned char>(data[i]))
                    : std::bit_cast<float>(LoadBigEndian32(data.data() + i * 4));
  }
  return m;
}

}  // namespace shardvec
