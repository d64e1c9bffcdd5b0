#include "format/npy.h"

#include <fmt/format.h>

#include <fmt/ranges.h>

#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

#include "common/half_float.h"
#include "common/status_macros.h"
#include "shardvec/limits.h"

namespace shardvec {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
// np.save aligns the data to this many bytes so the file can be memory-mapped.
constexpr size_t kArrayAlign = 64;
// np.save leaves room for the first axis to grow to this many digits without rewriting the file.
constexpr size_t kGrowthAxisMaxDigits = 21;
// Headers nest a tuple or two (shape, structured dtypes); the parser recurses per level, and a
// 65 535-byte header of '(' must not overflow the stack.
constexpr int kMaxHeaderNesting = 16;

// ---------------------------------------------------------------------------------------------
// Byte order helpers.

template <size_t N>
struct UintOfSize;
template <>
struct UintOfSize<1> { using type = uint8_t; };
template <>
struct UintOfSize<2> { using type = uint16_t; };
template <>
struct UintOfSize<4> { using type = uint32_t; };
template <>
struct UintOfSize<8> { using type = uint64_t; };

template <typename U>
U ByteSwap(U v) {
  if constexpr (sizeof(U) == 1) return v;
  if constexpr (sizeof(U) == 2) return __builtin_bswap16(v);
  if constexpr (sizeof(U) == 4) return __builtin_bswap32(v);
  if constexpr (sizeof(U) == 8) return __builtin_bswap64(v);
}

// Reads one T stored at `p` (unaligned), swapping bytes when the file's order is not ours.
template <typename T>
T LoadScalar(const char* p, bool swap) {
  using U = typename UintOfSize<sizeof(T)>::type;
  U raw;
  std::memcpy(&raw, p, sizeof(raw));
  if (swap) raw = ByteSwap(raw);
  return std::bit_cast<T>(raw);
}

// ---------------------------------------------------------------------------------------------
// The header is a Python dict literal:
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }

struct PyValue {
  enum class Kind { kString, kInt, kBool, kNone, kSequence };
  Kind kind = Kind::kNone;
  std::string text;            // kString
  int64_t integer = 0;         // kInt
  bool boolean = false;        // kBool
  std::vector<PyValue> items;  // kSequence (tuple or list)
};

PyValue MakeValue(PyValue::Kind kind) {
  PyValue value;
  value.kind = kind;
  return value;
}

// Parses the small subset of Python literals numpy writes into .npy headers.
class HeaderLiteralParser {
 public:
  explicit HeaderLiteralParser(std::string_view text) : text_(text) {}

  // Returns the dict's entries in file order; the error is a short reason.
  Result<std::vector<std::pair<std::string, PyValue>>> ParseDict() {
    std::vector<std::pair<std::string, PyValue>> entries;
    if (!Consume('{')) return Error("expected '{'");
    while (!Consume('}')) {
      SkipSpace();
      if (AtEnd()) return Error("missing '}'");
      ASSIGN_OR_RETURN(PyValue key, ParseValue());
      if (key.kind != PyValue::Kind::kString) return Error("dict keys must be strings");
      if (!Consume(':')) return Error("expected ':'");
      ASSIGN_OR_RETURN(PyValue value, ParseValue());
      entries.emplace_back(std::move(key.text), std::move(value));
      if (!Consume(',')) {
        if (!Consume('}')) return Error("expected ',' or '}'");
        break;
      }
    }
    SkipSpace();
    if (!AtEnd()) return Error("unexpected text after '}'");
    return entries;
  }

 private:
  Result<PyValue> ParseValue() {
    SkipSpace();
    if (AtEnd()) return Error("unexpected end of header");
    char c = text_[pos_];
    if (c == '\'' || c == '"') return ParseString(c);
    if (c == '(') return ParseSequence(')');
    if (c == '[') return ParseSequence(']');
    if (c == '-' || (c >= '0' && c <= '9')) return ParseInt();
    return ParseKeyword();
  }

  Result<PyValue> ParseString(char quote) {
    ++pos_;
    PyValue value = MakeValue(PyValue::Kind::kString);
    while (!AtEnd() && text_[pos_] != quote) {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;  // keep the escaped char as-is
      value.text += text_[pos_++];
    }
    if (AtEnd()) return Error("unterminated string");
    ++pos_;
    return value;
  }

  Result<PyValue> ParseSequence(char close) {
    if (depth_ == kMaxHeaderNesting) {
      return Error(fmt::format("tuples and lists nest deeper than {} levels", kMaxHeaderNesting));
    }
    ++pos_;
    ++depth_;
    PyValue value = MakeValue(PyValue::Kind::kSequence);
    while (!Consume(close)) {
      ASSIGN_OR_RETURN(PyValue item, ParseValue());
      value.items.push_back(std::move(item));
      if (!Consume(',')) {
        if (!Consume(close)) return Error(fmt::format("expected ',' or '{}'", close));
        break;
      }
    }
    --depth_;
    return value;
  }

  Result<PyValue> ParseInt() {
    size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    while (!AtEnd() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    PyValue value = MakeValue(PyValue::Kind::kInt);
    auto [end, ec] = std::from_chars(text_.data() + start, text_.data() + pos_, value.integer);
    if (ec != std::errc() || end != text_.data() + pos_) {
      return Error(fmt::format("bad integer '{}'", text_.substr(start, pos_ - start)));
    }
    // Python 2 era headers wrote longs as "3L".
    if (!AtEnd() && (text_[pos_] == 'L' || text_[pos_] == 'l')) ++pos_;
    return value;
  }

  Result<PyValue> ParseKeyword() {
    size_t start = pos_;
    while (!AtEnd() && std::isalpha(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    std::string_view word = text_.substr(start, pos_ - start);
    if (word == "True" || word == "False") {
      PyValue value = MakeValue(PyValue::Kind::kBool);
      value.boolean = word == "True";
      return value;
    }
    if (word == "None") return MakeValue(PyValue::Kind::kNone);
    if (word.empty()) return Error(fmt::format("unexpected character '{}'", text_[start]));
    return Error(fmt::format("unexpected word '{}'", word));
  }

  void SkipSpace() {
    while (!AtEnd() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Consume(char c) {
    SkipSpace();
    if (AtEnd() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool AtEnd() const { return pos_ >= text_.size(); }
  Status Error(std::string reason) const {
    return Status::InvalidArgument(fmt::format("{} at offset {}", reason, pos_));
  }

  std::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;  // open tuples and lists
};

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  std::string_view data;  // everything after the header
};

Status Invalid(std::string_view what, std::string_view detail) {
  return Status::InvalidArgument(fmt::format("{}: {}", what, detail));
}

std::string FormatShape(const std::vector<int64_t>& shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

uint32_t LoadLittleEndianLength(std::string_view bytes, size_t offset, size_t width) {
  uint32_t value = 0;
  for (size_t i = 0; i < width; ++i) {
    value |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return value;
}

// Splits the bytes into the header's text and the data that follows it.
Result<std::pair<std::string_view, std::string_view>> SplitHeader(std::string_view bytes,
                                                                  std::string_view what) {
  if (bytes.substr(0, kMagic.size()) != kMagic) {
    return Invalid(what, "not a .npy file (bad magic: expected the bytes \\x93NUMPY)");
  }
  if (bytes.size() < kMagic.size() + 2) return Invalid(what, ".npy header is truncated");
  int major = static_cast<unsigned char>(bytes[6]);
  int minor = static_cast<unsigned char>(bytes[7]);
  if (major < 1 || major > 3) {
    return Invalid(what, fmt::format(
                             ".npy version {}.{} is not supported; expected 1.0, 2.0 or 3.0",
                             major, minor));
  }
  // Version 1 stores the header length in 2 bytes; versions 2 and 3 in 4.
  size_t length_width = major == 1 ? 2 : 4;
  size_t header_start = kMagic.size() + 2 + length_width;
  if (bytes.size() < header_start) return Invalid(what, ".npy header is truncated");
  size_t header_length = LoadLittleEndianLength(bytes, kMagic.size() + 2, length_width);
  if (header_length > static_cast<size_t>(kMaxNpyHeaderBytes)) {
    return Invalid(what, fmt::format(".npy header declares {} bytes, more than the limit of {}", header_length,
                                     kMaxNpyHeaderBytes));
  }
  if (bytes.size() - header_start < header_length) {
    return Invalid(what, fmt::format(".npy header is truncated: it declares {} bytes, file has {}",
                                     header_length, bytes.size() - header_start));
  }
  return std::pair{bytes.substr(header_start, header_length),
                   bytes.substr(header_start + header_length)};
}

Result<NpyHeader> ParseHeader(std::string_view bytes, std::string_view what) {
  ASSIGN_OR_RETURN(auto parts, SplitHeader(bytes, what));
  auto [text, data] = parts;
  auto entries = HeaderLiteralParser(text).ParseDict();
  if (!entries.ok()) {
    return Invalid(what, fmt::format(".npy header is malformed ({}): {}",
                                     entries.status().message(), text.substr(0, 200)));
  }
  NpyHeader header;
  header.data = data;
  bool has_descr = false, has_order = false, has_shape = false;
  for (auto& [key, value] : *entries) {
    if (key == "descr") {
      if (value.kind != PyValue::Kind::kString) {
        return Invalid(what, "structured dtypes are not supported; expected float16, float32 or float64");
      }
      header.descr = value.text;
      has_descr = true;
    } else if (key == "fortran_order") {
      if (value.kind != PyValue::Kind::kBool) {
        return Invalid(what, ".npy header field 'fortran_order' is not True or False");
      }
      header.fortran_order = value.boolean;
      has_order = true;
    } else if (key == "shape") {
      if (value.kind != PyValue::Kind::kSequence) {
        return Invalid(what, ".npy header field 'shape' is not a tuple");
      }
      for (const PyValue& dim : value.items) {
        if (dim.kind != PyValue::Kind::kInt || dim.integer < 0) {
          return Invalid(what, ".npy header field 'shape' must hold non-negative integers");
        }
        header.shape.push_back(dim.integer);
      }
      has_shape = true;
    }
  }
  if (!has_descr) return Invalid(what, ".npy header has no 'descr'");
  if (!has_order) return Invalid(what, ".npy header has no 'fortran_order'");
  if (!has_shape) return Invalid(what, ".npy header has no 'shape'");
  if (header.fortran_order) {
    return Invalid(what, "fortran_order True is not supported; save a C-order array "
                         "(np.ascontiguousarray)");
  }
  return header;
}

// A descr such as '<f4': byte order, kind letter, item size.
struct DType {
  char order = '<';
  char kind = '?';
  int size = 0;

  bool NeedsSwap() const {
    if (order == '<') return std::endian::native != std::endian::little;
    if (order == '>') return std::endian::native != std::endian::big;
    return false;  // '=' native, '|' not applicable
  }
};

std::optional<DType> ParseDType(std::string_view descr) {
  if (descr.size() != 3) return std::nullopt;
  DType dtype{.order = descr[0], .kind = descr[1], .size = descr[2] - '0'};
  if (std::string_view("<>=|").find(dtype.order) == std::string_view::npos) return std::nullopt;
  if (dtype.size != 1 && dtype.size != 2 && dtype.size != 4 && dtype.size != 8) return std::nullopt;
  // '|' (byte order not applicable) only makes sense for single bytes.
  if (dtype.order == '|' && dtype.size != 1) return std::nullopt;
  return dtype;
}

bool IsFloat(const DType& d) { return d.kind == 'f' && (d.size == 4 || d.size == 8); }
// float16 vectors: accepted by the matrix reader (converted exactly), not as integer ids.
bool IsMatrixFloat(const DType& d) { return IsFloat(d) || (d.kind == 'f' && d.size == 2); }
bool IsInteger(const DType& d) { return d.kind == 'i' || d.kind == 'u'; }

// Checks that the data holds exactly the elements the shape and dtype call for.
Result<int64_t> CheckDataSize(const NpyHeader& header, int item_size, std::string_view what) {
  int64_t count = 1;
  for (int64_t dim : header.shape) {
    if (dim != 0 && count > std::numeric_limits<int64_t>::max() / item_size / dim) {
      return Invalid(what, fmt::format("shape {} is too large", FormatShape(header.shape)));
    }
    count *= dim;
  }
  uint64_t needed = static_cast<uint64_t>(count) * item_size;
  if (header.data.size() < needed) {
    return Invalid(what, fmt::format("data is truncated: shape {} of '{}' needs {} bytes, found {}",
                                     FormatShape(header.shape), header.descr, needed,
                                     header.data.size()));
  }
  if (header.data.size() > needed) {
    return Invalid(what, fmt::format("{} unexpected bytes after the data of shape {} of '{}'",
                                     header.data.size() - needed, FormatShape(header.shape),
                                     header.descr));
  }
  return count;
}

void DecodeFloats(std::string_view data, const DType& dtype, float* out, int64_t count) {
  if (count == 0) return;  // `out` may be null
  bool swap = dtype.NeedsSwap();
  if (dtype.size == 4 && !swap) {
    std::memcpy(out, data.data(), static_cast<size_t>(count) * sizeof(float));
  } else if (dtype.size == 4) {
    for (int64_t i = 0; i < count; ++i) out[i] = LoadScalar<float>(data.data() + i * 4, true);
  } else if (dtype.size == 2) {
    for (int64_t i = 0; i < count; ++i) out[i] = HalfToFloat(LoadScalar<uint16_t>(data.data() + i * 2, swap));
  } else {
    for (int64_t i = 0; i < count; ++i) {
      out[i] = static_cast<float>(LoadScalar<double>(data.data() + i * 8, swap));
    }
  }
}

template <typename T>
Status DecodeIntegersAs(const NpyHeader& header, const DType& dtype, std::vector<int64_t>& out,
                        std::string_view what) {
  bool swap = dtype.NeedsSwap();
  for (size_t i = 0; i < out.size(); ++i) {
    T value = LoadScalar<T>(header.data.data() + i * sizeof(T), swap);
    if constexpr (std::is_floating_point_v<T>) {
      // Anything outside [-2^63, 2^63) or with a fraction (or NaN) is not an integer id.
      if (!(value >= -0x1p63 && value < 0x1p63) || std::trunc(value) != value) {
        return Invalid(what, fmt::format("value at index {} is {}, not an integer", i, value));
      }
    } else if constexpr (std::is_same_v<T, uint64_t>) {
      if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Invalid(what, fmt::format("value at index {} is {}, larger than int64", i, value));
      }
    }
    out[i] = static_cast<int64_t>(value);
  }
  return Status::OK();
}

Status DecodeIntegers(const NpyHeader& header, const DType& d, std::vector<int64_t>& out,
                      std::string_view what) {
  if (d.kind == 'f') {
    return d.size == 4 ? DecodeIntegersAs<float>(header, d, out, what)
                       : DecodeIntegersAs<double>(header, d, out, what);
  }
  bool is_signed = d.kind == 'i';
  switch (d.size) {
    case 1: return is_signed ? DecodeIntegersAs<int8_t>(header, d, out, what)
                             : DecodeIntegersAs<uint8_t>(header, d, out, what);
    case 2: return is_signed ? DecodeIntegersAs<int16_t>(header, d, out, what)
                             : DecodeIntegersAs<uint16_t>(header, d, out, what);
    case 4: return is_signed ? DecodeIntegersAs<int32_t>(header, d, out, what)
                             : DecodeIntegersAs<uint32_t>(header, d, out, what);
    default: return is_signed ? DecodeIntegersAs<int64_t>(header, d, out, what)
                              : DecodeIntegersAs<uint64_t>(header, d, out, what);
  }
}

size_t DecimalDigits(int64_t value) { return fmt::format("{}", value).size(); }

}  // namespace

Result<Matrix> ParseNpyMatrix(std::string_view bytes, std::string_view what) {
  ASSIGN_OR_RETURN(NpyHeader header, ParseHeader(bytes, what));
  std::optional<DType> dtype = ParseDType(header.descr);
  if (!dtype || !IsMatrixFloat(*dtype)) {
    return Invalid(what, fmt::format("dtype '{}' is not supported; expected float16, float32 or float64",
                                     header.descr));
  }
  if (header.shape.size() != 1 && header.shape.size() != 2) {
    return Invalid(what, fmt::format("shape {} is not supported; expected a 2-D array",
                                     FormatShape(header.shape)));
  }
  ASSIGN_OR_RETURN(int64_t count, CheckDataSize(header, dtype->size, what));
  Matrix m;
  m.rows = header.shape.size() == 2 ? header.shape[0] : 1;
  m.cols = header.shape.back();
  m.data.resize(static_cast<size_t>(count));
  DecodeFloats(header.data, *dtype, m.data.data(), count);
  return m;
}

Result<std::vector<int64_t>> ParseNpyIntegers(std::string_view bytes, std::string_view what) {
  ASSIGN_OR_RETURN(NpyHeader header, ParseHeader(bytes, what));
  std::optional<DType> dtype = ParseDType(header.descr);
  if (!dtype || !(IsInteger(*dtype) || IsFloat(*dtype))) {
    return Invalid(what, fmt::format("dtype '{}' is not supported; expected an integer array",
                                     header.descr));
  }
  bool is_column = header.shape.size() == 2 && header.shape[1] == 1;
  if (header.shape.size() != 1 && !is_column) {
    return Invalid(what, fmt::format("shape {} is not supported; expected a 1-D array (or n×1)",
                                     FormatShape(header.shape)));
  }
  ASSIGN_OR_RETURN(int64_t count, CheckDataSize(header, dtype->size, what));
  std::vector<int64_t> values(static_cast<size_t>(count));
  RETURN_IF_ERROR(DecodeIntegers(header, *dtype, values, what));
  return values;
}

std::string EncodeNpyMatrix(const Matrix& m) {
  // Mirrors numpy.lib.format._write_array_header and _wrap_header (numpy 1.x and 2.x).
  std::string dict = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
                                 m.rows, m.cols);
  size_t row_digits = DecimalDigits(m.rows);
  if (row_digits < kGrowthAxisMaxDigits) dict.append(kGrowthAxisMaxDigits - row_digits, ' ');
  size_t prefix_size = kMagic.size() + 2 + 2;  // magic, version, uint16 header length
  size_t text_size = dict.size() + 1;          // + the final '\n'
  size_t padding = kArrayAlign - (prefix_size + text_size) % kArrayAlign;
  size_t header_length = text_size + padding;

  size_t count = static_cast<size_t>(m.rows * m.cols);
  std::string out;
  out.reserve(prefix_size + header_length + count * sizeof(float));
  out.append(kMagic);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header_length & 0xff));
  out.push_back(static_cast<char>((header_length >> 8) & 0xff));
  out.append(dict);
  out.append(padding, ' ');
  out.push_back('\n');
  if constexpr (std::endian::native == std::endian::little) {
    out.append(reinterpret_cast<const char*>(m.data.data()), count * sizeof(float));
  } else {
    for (size_t i = 0; i < count; ++i) {
      uint32_t raw = ByteSwap(std::bit_cast<uint32_t>(m.data[i]));
      out.append(reinterpret_cast<const char*>(&raw), sizeof(raw));
    }
  }
  return out;
}

}  // namespace shardvec
