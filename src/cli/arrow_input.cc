// LoadArrowInput through Apache Arrow's C++ libraries (Parquet, Arrow IPC file and stream formats).
// Compiled only when CMake found Arrow; everything Arrow stays inside this file.
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <arrow/util/float16.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/schema.h>
#include <parquet/exception.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "cli/arrow_input.h"
#include "shardvec/text.h"

namespace shardvec {
namespace {

using Json = nlohmann::ordered_json;  // payload keys in --payload-cols order

// Rows per record batch read from Parquet: bounded memory whatever the file's size.
constexpr int64_t kParquetBatchRows = 8192;

// An integer scalar's value: signed ones as int64, unsigned ones as uint64.
struct IntegerValue {
  bool is_unsigned = false;
  int64_t signed_value = 0;
  uint64_t unsigned_value = 0;
};

template <typename ScalarType>
IntegerValue ValueOf(const arrow::Scalar& scalar) {
  auto v = static_cast<const ScalarType&>(scalar).value;
  if constexpr (std::is_unsigned_v<decltype(v)>) {
    return {.is_unsigned = true, .unsigned_value = v};
  } else {
    return {.signed_value = v};
  }
}

std::optional<IntegerValue> IntegerOf(const arrow::Scalar& scalar) {
  switch (scalar.type->id()) {
    case arrow::Type::INT8: return ValueOf<arrow::Int8Scalar>(scalar);
    case arrow::Type::INT16: return ValueOf<arrow::Int16Scalar>(scalar);
    case arrow::Type::INT32: return ValueOf<arrow::Int32Scalar>(scalar);
    case arrow::Type::INT64: return ValueOf<arrow::Int64Scalar>(scalar);
    case arrow::Type::UINT8: return ValueOf<arrow::UInt8Scalar>(scalar);
    case arrow::Type::UINT16: return ValueOf<arrow::UInt16Scalar>(scalar);
    case arrow::Type::UINT32: return ValueOf<arrow::UInt32Scalar>(scalar);
    case arrow::Type::UINT64: return ValueOf<arrow::UInt64Scalar>(scalar);
    default: return std::nullopt;
  }
}

class ArrowInputReader {
 public:
  ArrowInputReader(const std::string& path, const ArrowInputColumns& columns, std::string_view flag)
      : path_(path), columns_(columns), label_(fmt::format("{} '{}'", flag, EscapeForDisplay(path))) {}

  Result<InputData> Read() {
    auto file = arrow::io::ReadableFile::Open(path_);
    if (!file.ok()) return FromArrow(file.status(), "cannot open");
    Status st = IsParquetPath(path_) ? ReadParquet(*file) : ReadIpc(*file);
    if (!st.ok()) return st;
    if (input_.vectors.rows == 0) return Invalid("holds no rows");
    return std::move(input_);
  }

 private:
  Status Invalid(std::string_view detail) const {
    return Status::InvalidArgument(fmt::format("{}: {}", label_, detail));
  }
  Status AtRow(std::string_view column, int64_t row, std::string_view detail) const {
    return Invalid(fmt::format("column '{}' row {}: {}", column, row, detail));
  }
  Status FromArrow(const arrow::Status& st, std::string_view doing) const {
    if (st.IsIOError() && st.ToString().find("No such file or directory") != std::string::npos) {
      return Status::NotFound(fmt::format("{}: file not found", label_));
    }
    return Invalid(fmt::format("{} ({})", doing, EscapeForDisplay(st.ToString())));
  }

  // The names of the columns this input reads, each once, vector column first.
  std::vector<std::string> WantedColumns() const {
    std::vector<std::string> names = {columns_.vector_col};
    auto add = [&names](const std::string& name) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    };
    if (!columns_.id_col.empty()) add(columns_.id_col);
    for (const std::string& name : columns_.payload_cols) add(name);
    return names;
  }

  Status CheckColumnsExist(const arrow::Schema& schema) const {
    for (const std::string& name : WantedColumns()) {
      const size_t matches = schema.GetAllFieldIndices(name).size();
      if (matches == 1) continue;
      std::string_view flag = name == columns_.vector_col ? "--vector-col"
                              : name == columns_.id_col   ? "--id-col"
                                                          : "--payload-cols";
      if (matches > 1) {
        return Invalid(fmt::format("{} '{}' names {} columns of the file", flag, EscapeForDisplay(name), matches));
      }
      std::vector<std::string> present;
      for (const auto& field : schema.fields()) present.push_back(fmt::format("'{}'", EscapeForDisplay(field->name())));
      return Invalid(fmt::format("{} '{}' is not a column of the file (its columns: {})", flag,
                                 EscapeForDisplay(name), fmt::join(present, ", ")));
    }
    return Status::OK();
  }

  Status ReadParquet(const std::shared_ptr<arrow::io::ReadableFile>& file) {
    parquet::ArrowReaderProperties properties;
    properties.set_batch_size(kParquetBatchRows);
    properties.set_use_threads(false);
    parquet::arrow::FileReaderBuilder builder;
    try {
      if (auto st = builder.Open(file); !st.ok()) return FromArrow(st, "not a readable Parquet file");
    } catch (const parquet::ParquetException& error) {
      return Invalid(fmt::format("not a readable Parquet file ({})", EscapeForDisplay(error.what())));
    }
    builder.properties(properties);
    std::unique_ptr<parquet::arrow::FileReader> reader;
    if (auto built = builder.Build(); built.ok()) {
      reader = std::move(built).ValueUnsafe();
    } else {
      return FromArrow(built.status(), "not a readable Parquet file");
    }
    std::shared_ptr<arrow::Schema> schema;
    if (auto st = reader->GetSchema(&schema); !st.ok()) return FromArrow(st, "cannot read the schema");
    if (Status st = CheckColumnsExist(*schema); !st.ok()) return st;
    // Only the leaf columns of the wanted fields are decoded.
    std::vector<int> leaves;
    for (const std::string& name : WantedColumns()) {
      AddLeaves(reader->manifest().schema_fields[schema->GetFieldIndex(name)], leaves);
    }
    std::vector<int> row_groups(reader->num_row_groups());
    for (int i = 0; i < reader->num_row_groups(); ++i) row_groups[i] = i;
    auto batches = reader->GetRecordBatchReader(row_groups, leaves);
    if (!batches.ok()) return FromArrow(batches.status(), "cannot read");
    while (true) {
      std::shared_ptr<arrow::RecordBatch> batch;
      if (auto st = (*batches)->ReadNext(&batch); !st.ok()) return FromArrow(st, "cannot read");
      if (batch == nullptr) return Status::OK();
      if (Status st = AddBatch(*batch); !st.ok()) return st;
    }
  }

  static void AddLeaves(const parquet::arrow::SchemaField& field, std::vector<int>& leaves) {
    if (field.is_leaf()) leaves.push_back(field.column_index);
    for (const auto& child : field.children) AddLeaves(child, leaves);
  }

  // The IPC file format (random access, .arrow/.feather), else the IPC stream format.
  Status ReadIpc(const std::shared_ptr<arrow::io::ReadableFile>& file) {
    auto reader = arrow::ipc::RecordBatchFileReader::Open(file);
    if (reader.ok()) {
      if (Status st = CheckColumnsExist(*(*reader)->schema()); !st.ok()) return st;
      for (int i = 0; i < (*reader)->num_record_batches(); ++i) {
        auto batch = (*reader)->ReadRecordBatch(i);
        if (!batch.ok()) return FromArrow(batch.status(), "cannot read");
        if (Status st = AddBatch(**batch); !st.ok()) return st;
      }
      return Status::OK();
    }
    if (auto st = file->Seek(0); !st.ok()) return FromArrow(st, "cannot read");
    auto stream = arrow::ipc::RecordBatchStreamReader::Open(file);
    if (!stream.ok()) {
      return FromArrow(reader.status(), "not an Arrow IPC file or stream (nor Parquet: name those .parquet)");
    }
    if (Status st = CheckColumnsExist(*(*stream)->schema()); !st.ok()) return st;
    while (true) {
      std::shared_ptr<arrow::RecordBatch> batch;
      if (auto st = (*stream)->ReadNext(&batch); !st.ok()) return FromArrow(st, "cannot read");
      if (batch == nullptr) return Status::OK();
      if (Status st = AddBatch(*batch); !st.ok()) return st;
    }
  }

  Status AddBatch(const arrow::RecordBatch& batch) {
    if (auto st = batch.ValidateFull(); !st.ok()) return FromArrow(st, "the file's data is invalid");
    const int64_t first_row = input_.vectors.rows;
    if (Status st = AddVectors(*batch.GetColumnByName(columns_.vector_col), first_row); !st.ok()) return st;
    if (!columns_.id_col.empty()) {
      if (Status st = AddIds(*batch.GetColumnByName(columns_.id_col), first_row); !st.ok()) return st;
    }
    if (!columns_.payload_cols.empty()) {
      if (Status st = AddPayloads(batch, first_row); !st.ok()) return st;
    }
    input_.vectors.rows += batch.num_rows();
    return Status::OK();
  }

  // ---- vectors

  Status AddVectors(const arrow::Array& column, int64_t first_row) {
    const std::string& name = columns_.vector_col;
    std::shared_ptr<arrow::Array> values;
    const arrow::Type::type type = column.type_id();
    if (type != arrow::Type::FIXED_SIZE_LIST && type != arrow::Type::LIST && type != arrow::Type::LARGE_LIST) {
      return Invalid(fmt::format("--vector-col '{}' has type {}, expected a fixed_size_list or list of "
                                 "float16, float32 or float64", name, column.type()->ToString()));
    }
    const auto value_type = column.type()->field(0)->type()->id();
    if (value_type != arrow::Type::HALF_FLOAT && value_type != arrow::Type::FLOAT &&
        value_type != arrow::Type::DOUBLE) {
      return Invalid(fmt::format("--vector-col '{}' has type {}, expected a list of float16, float32 or float64",
                                 name, column.type()->ToString()));
    }
    Matrix& m = input_.vectors;
    for (int64_t i = 0; i < column.length(); ++i) {
      const int64_t row = first_row + i;
      if (column.IsNull(i)) return AtRow(name, row, "the vector is null");
      int64_t offset = 0, length = 0;
      if (type == arrow::Type::FIXED_SIZE_LIST) {
        const auto& list = static_cast<const arrow::FixedSizeListArray&>(column);
        offset = list.value_offset(i), length = list.value_length(i), values = list.values();
      } else if (type == arrow::Type::LIST) {
        const auto& list = static_cast<const arrow::ListArray&>(column);
        offset = list.value_offset(i), length = list.value_length(i), values = list.values();
      } else {
        const auto& list = static_cast<const arrow::LargeListArray&>(column);
        offset = list.value_offset(i), length = list.value_length(i), values = list.values();
      }
      if (length == 0) return AtRow(name, row, "the vector is empty");
      if (m.rows == 0 && i == 0) {
        m.cols = length;
      } else if (length != m.cols) {
        return AtRow(name, row, fmt::format("has {} values, expected {} (ragged rows)", length, m.cols));
      }
      if (values->null_count() > 0) {
        for (int64_t j = 0; j < length; ++j) {
          if (values->IsNull(offset + j)) return AtRow(name, row, fmt::format("value at index {} is null", j));
        }
      }
      AppendFloats(*values, offset, length, m.data);
    }
    return Status::OK();
  }

  static void AppendFloats(const arrow::Array& values, int64_t offset, int64_t length, std::vector<float>& out) {
    switch (values.type_id()) {
      case arrow::Type::HALF_FLOAT: {
        const uint16_t* raw = static_cast<const arrow::HalfFloatArray&>(values).raw_values() + offset;
        for (int64_t j = 0; j < length; ++j) out.push_back(arrow::util::Float16::FromBits(raw[j]).ToFloat());
        break;
      }
      case arrow::Type::FLOAT: {
        const float* raw = static_cast<const arrow::FloatArray&>(values).raw_values() + offset;
        out.insert(out.end(), raw, raw + length);
        break;
      }
      default: {
        const double* raw = static_cast<const arrow::DoubleArray&>(values).raw_values() + offset;
        for (int64_t j = 0; j < length; ++j) out.push_back(static_cast<float>(raw[j]));
      }
    }
  }

  // ---- ids

  Status AddIds(const arrow::Array& column, int64_t first_row) {
    const std::string& name = columns_.id_col;
    if (!input_.ids) input_.ids.emplace();
    for (int64_t i = 0; i < column.length(); ++i) {
      const int64_t row = first_row + i;
      if (column.IsNull(i)) return AtRow(name, row, "the id is null");
      auto scalar = column.GetScalar(i);
      if (!scalar.ok()) return FromArrow(scalar.status(), "cannot read");
      const arrow::Scalar& value = **scalar;
      if (std::optional<IntegerValue> integer = IntegerOf(value)) {
        if (integer->is_unsigned && integer->unsigned_value > uint64_t{std::numeric_limits<int64_t>::max()}) {
          return AtRow(name, row, fmt::format("id {} is larger than int64", integer->unsigned_value));
        }
        input_.ids->emplace_back(integer->is_unsigned ? static_cast<int64_t>(integer->unsigned_value)
                                                      : integer->signed_value);
      } else if (value.type->id() == arrow::Type::STRING || value.type->id() == arrow::Type::LARGE_STRING) {
        std::string text(static_cast<const arrow::BaseBinaryScalar&>(value).view());
        if (Status st = CheckUtf8(text, "the id"); !st.ok()) return AtRow(name, row, st.message());
        input_.ids->emplace_back(std::move(text));
      } else {
        return Invalid(fmt::format("--id-col '{}' has type {}, expected an integer or string column", name,
                                   column.type()->ToString()));
      }
    }
    return Status::OK();
  }

  // ---- payloads

  Status AddPayloads(const arrow::RecordBatch& batch, int64_t first_row) {
    if (!input_.payloads) input_.payloads.emplace();
    std::vector<std::shared_ptr<arrow::Array>> arrays;
    for (const std::string& name : columns_.payload_cols) arrays.push_back(batch.GetColumnByName(name));
    for (int64_t i = 0; i < batch.num_rows(); ++i) {
      Json payload = Json::object();
      for (size_t c = 0; c < arrays.size(); ++c) {
        auto scalar = arrays[c]->GetScalar(i);
        if (!scalar.ok()) return FromArrow(scalar.status(), "cannot read");
        Result<Json> value = ScalarToJson(**scalar);
        if (!value.ok()) return AtRow(columns_.payload_cols[c], first_row + i, value.status().message());
        payload[columns_.payload_cols[c]] = std::move(value).value();
      }
      input_.payloads->emplace_back(payload.dump());
    }
    return Status::OK();
  }

  // A payload value as the Python writer's json.dumps would write it: null, booleans, numbers,
  // text, lists and structs (objects); anything else (binary, dates, decimals…) is refused by type.
  static Result<Json> ScalarToJson(const arrow::Scalar& value) {
    if (!value.is_valid) return Json(nullptr);
    const arrow::Type::type type = value.type->id();
    if (type == arrow::Type::BOOL) return Json(static_cast<const arrow::BooleanScalar&>(value).value);
    if (std::optional<IntegerValue> integer = IntegerOf(value)) {
      return integer->is_unsigned ? Json(integer->unsigned_value) : Json(integer->signed_value);
    }
    if (arrow::is_floating(type)) {
      double number = type == arrow::Type::HALF_FLOAT
                          ? arrow::util::Float16::FromBits(static_cast<const arrow::HalfFloatScalar&>(value).value).ToFloat()
                      : type == arrow::Type::FLOAT ? static_cast<const arrow::FloatScalar&>(value).value
                                                   : static_cast<const arrow::DoubleScalar&>(value).value;
      if (!std::isfinite(number)) {
        return Status::InvalidArgument(fmt::format("payload value {} is not finite (JSON has no NaN or Infinity)", number));
      }
      return Json(number);
    }
    if (type == arrow::Type::STRING || type == arrow::Type::LARGE_STRING || type == arrow::Type::STRING_VIEW) {
      std::string text(static_cast<const arrow::BaseBinaryScalar&>(value).view());
      if (Status st = CheckUtf8(text, "the text"); !st.ok()) return st;
      return Json(std::move(text));
    }
    if (type == arrow::Type::DICTIONARY) {
      auto decoded = static_cast<const arrow::DictionaryScalar&>(value).GetEncodedValue();
      if (!decoded.ok()) return Status::InvalidArgument(decoded.status().message());
      return ScalarToJson(**decoded);
    }
    if (type == arrow::Type::LIST || type == arrow::Type::LARGE_LIST || type == arrow::Type::FIXED_SIZE_LIST) {
      const auto& list = static_cast<const arrow::BaseListScalar&>(value);
      Json items = Json::array();
      for (int64_t j = 0; j < list.value->length(); ++j) {
        auto item = list.value->GetScalar(j);
        if (!item.ok()) return Status::InvalidArgument(item.status().message());
        Result<Json> json = ScalarToJson(**item);
        if (!json.ok()) return json.status();
        items.push_back(std::move(json).value());
      }
      return items;
    }
    if (type == arrow::Type::STRUCT) {
      const auto& fields = static_cast<const arrow::StructScalar&>(value);
      Json object = Json::object();
      for (size_t j = 0; j < fields.value.size(); ++j) {
        Result<Json> json = ScalarToJson(*fields.value[j]);
        if (!json.ok()) return json.status();
        object[value.type->field(static_cast<int>(j))->name()] = std::move(json).value();
      }
      return object;
    }
    return Status::InvalidArgument(fmt::format(
        "type {} cannot be a JSON payload value (use booleans, integers, floats, strings, lists or structs)",
        value.type->ToString()));
  }

  const std::string& path_;
  const ArrowInputColumns& columns_;
  const std::string label_;
  InputData input_;
};

}  // namespace

bool ArrowInputAvailable() { return true; }

Result<InputData> LoadArrowInput(const std::string& path, const ArrowInputColumns& columns, std::string_view flag) {
  try {
    return ArrowInputReader(path, columns, flag).Read();
  } catch (const std::exception& error) {  // Parquet's decoders throw on corrupt pages
    return Status::InvalidArgument(
        fmt::format("{} '{}': cannot read ({})", flag, EscapeForDisplay(path), EscapeForDisplay(error.what())));
  }
}

}  // namespace shardvec
