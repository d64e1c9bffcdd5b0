#include "serve/search_request.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "common/json_text.h"
#include "format/routing_json.h"
#include "shardvec/status_macros.h"

namespace shardvec::serve {
namespace {

using nlohmann::json;

// The deepest a valid body nests: "vectors" rows (2) or a routing_context bytes value (3).
constexpr int kMaxBodyNesting = 4;
constexpr size_t kNumFields = std::size(kSearchFields);
// Room for the parsed values of a body of a few thousand numbers (RapidJSON takes 16 bytes a value).
constexpr size_t kKeptValueBytes = size_t{48} << 10;

// An error about `name`; remembers the field for the caller.
struct FieldErrors {
  std::string* field;
  Status operator()(std::string_view name, std::string message) const {
    if (field != nullptr) *field = std::string(name);
    return Status::InvalidArgument(std::move(message));
  }
};

// A value of the body (RapidJSON's), as the checks below read it.
class Value {
 public:
  explicit Value(const rapidjson::Value& v) : v_(&v) {}
  bool IsArray() const { return v_->IsArray(); }
  bool IsObject() const { return v_->IsObject(); }
  bool IsString() const { return v_->IsString(); }
  std::optional<double> Number() const { return v_->IsNumber() ? std::optional<double>(v_->GetDouble()) : std::nullopt; }
  std::optional<int64_t> Integer() const { return v_->IsInt64() ? std::optional<int64_t>(v_->GetInt64()) : std::nullopt; }
  std::string_view String() const { return std::string_view(v_->GetString(), v_->GetStringLength()); }
  size_t Size() const { return v_->Size(); }
  template <typename F>
  Status ForEachElement(F&& f) const {
    size_t i = 0;
    for (const rapidjson::Value& x : v_->GetArray()) RETURN_IF_ERROR(f(i++, Value(x)));
    return Status::OK();
  }
  template <typename F>
  Status ForEachField(F&& f) const {
    for (const auto& m : v_->GetObject()) {
      RETURN_IF_ERROR(f(std::string_view(m.name.GetString(), m.name.GetStringLength()), Value(m.value)));
    }
    return Status::OK();
  }
  std::string Text() const {
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> writer(out);
    v_->Accept(writer);
    return std::string(out.GetString(), out.GetSize());
  }
  json AsJson() const { return json::parse(Text(), nullptr, /*allow_exceptions=*/false); }

 private:
  const rapidjson::Value* v_;
};

// A value quoted in a message, cut short when long (a body may be megabytes).
std::string Quote(const Value& value) {
  std::string text = value.Text();
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

Result<int64_t> Integer(const Value& value, std::string_view name, const FieldErrors& error) {
  if (std::optional<int64_t> v = value.Integer()) return *v;
  return error(name, fmt::format("{} must be an integer, got {}", name, Quote(value)));
}

// One query vector: `dim` finite numbers that fit float32.
Status ReadVector(const Value& value, std::string_view name, int64_t dim, const FieldErrors& error, float* out) {
  if (!value.IsArray()) {
    return error(name, fmt::format("{} must be an array of {} numbers, got {}", name, dim, Quote(value)));
  }
  if (const size_t n = value.Size(); static_cast<int64_t>(n) != dim) {
    return error(name, fmt::format("{} has {} values, but the snapshot's dim is {}", name, n, dim));
  }
  return value.ForEachElement([&](size_t i, const Value& x) -> Status {
    const std::optional<double> v = x.Number();
    if (!v || !std::isfinite(*v) || std::fabs(*v) > std::numeric_limits<float>::max()) {
      return error(name, fmt::format("{}[{}] must be a finite float32 number, got {}", name, i, Quote(x)));
    }
    out[i] = static_cast<float>(*v);
    return Status::OK();
  });
}

// The body's fields by their place in kSearchFields (a field given twice: its last value, as JSON
// parsers commonly keep).
class Fields {
 public:
  const Value* Get(std::string_view name) const {
    for (size_t i = 0; i < kNumFields; ++i) {
      if (kSearchFields[i] == name) return values_[i] ? &*values_[i] : nullptr;
    }
    return nullptr;
  }

  static Result<Fields> Of(const Value& body, const FieldErrors& error) {
    Fields fields;
    RETURN_IF_ERROR(body.ForEachField([&](std::string_view key, const Value& value) -> Status {
      const auto* at = std::find(std::begin(kSearchFields), std::end(kSearchFields), key);
      if (at == std::end(kSearchFields)) {
        std::string known;
        for (std::string_view name : kSearchFields) known += fmt::format("{}{}", known.empty() ? "" : ", ", name);
        return error(key, fmt::format("unknown field '{}' (a search takes: {})", EscapeForDisplay(key), known));
      }
      fields.values_[static_cast<size_t>(at - std::begin(kSearchFields))].emplace(value);
      return Status::OK();
    }));
    return fields;
  }

 private:
  std::array<std::optional<Value>, kNumFields> values_;
};

Status ReadQueries(const Fields& body, const RequestLimits& limits, const FieldErrors& error, SearchRequest& req) {
  const Value* one = body.Get("vector");
  const Value* many = body.Get("vectors");
  if ((one != nullptr) == (many != nullptr)) {
    return error(one ? "vectors" : "vector", one ? "give either \"vector\" or \"vectors\", not both"
                                                 : "one of \"vector\" (a query) or \"vectors\" (a batch) is required");
  }
  req.batch = many != nullptr;
  req.queries.cols = limits.dim;
  if (one != nullptr) {
    req.queries.rows = 1;
    req.queries.data.resize(static_cast<size_t>(limits.dim));
    return ReadVector(*one, "vector", limits.dim, error, req.queries.data.data());
  }
  const size_t rows = many->IsArray() ? many->Size() : 0;
  if (rows == 0 || static_cast<int64_t>(rows) > limits.max_batch_queries) {
    return error("vectors", fmt::format("vectors must be an array of 1..{} query vectors, got {}",
                                        limits.max_batch_queries,
                                        many->IsArray() ? fmt::format("{} of them", rows) : Quote(*many)));
  }
  req.queries.rows = static_cast<int64_t>(rows);
  req.queries.data.resize(rows * static_cast<size_t>(limits.dim));
  return many->ForEachElement([&](size_t r, const Value& row) {
    return ReadVector(row, fmt::format("vectors[{}]", r), limits.dim, error, req.queries.row(static_cast<int64_t>(r)));
  });
}

// An optional integer field that must be >= `min`.
Result<std::optional<int64_t>> OptionalInteger(const Fields& body, std::string_view name, int64_t min,
                                               const FieldErrors& error) {
  const Value* field = body.Get(name);
  if (field == nullptr) return std::optional<int64_t>();
  ASSIGN_OR_RETURN(int64_t value, Integer(*field, name, error));
  if (value < min) return error(name, fmt::format("{} must be >= {}, got {}", name, min, value));
  return std::optional<int64_t>(value);
}

Status ReadOptions(const Fields& body, const RequestLimits& limits, const FieldErrors& error, SearchRequest& req) {
  if (const Value* top_k = body.Get("top_k")) {
    ASSIGN_OR_RETURN(req.top_k, Integer(*top_k, "top_k", error));
    if (req.top_k < 1 || req.top_k > limits.max_top_k) {
      return error("top_k", fmt::format("top_k must be 1..{}, got {}", limits.max_top_k, req.top_k));
    }
  }
  SearchOptions& o = req.options;
  ASSIGN_OR_RETURN(o.num_probes, OptionalInteger(body, "num_probes", 1, error));
  ASSIGN_OR_RETURN(o.sublist_probes, OptionalInteger(body, "sublist_probes", 1, error));
  ASSIGN_OR_RETURN(o.max_extra_probes, OptionalInteger(body, "max_extra_probes", 0, error));
  if (const Value* ids = body.Get("shard_ids")) {
    if (!ids->IsArray() || ids->Size() == 0) {
      return error("shard_ids", fmt::format("shard_ids must be a non-empty array of shard ids, got {}", Quote(*ids)));
    }
    o.shard_ids.emplace();
    RETURN_IF_ERROR(ids->ForEachElement([&](size_t i, const Value& id) -> Status {
      ASSIGN_OR_RETURN(int64_t value, Integer(id, fmt::format("shard_ids[{}]", i), error));
      o.shard_ids->push_back(value);
      return Status::OK();
    }));
  }
  if (const Value* context = body.Get("routing_context")) {
    Result<RoutingContext> parsed = context->IsObject()
                                        ? RoutingContextFromJson(context->AsJson(), "routing_context")
                                        : Result<RoutingContext>(Status::InvalidArgument(fmt::format(
                                              "routing_context must be an object of variable: value, got {}", Quote(*context))));
    if (!parsed.ok()) return error("routing_context", parsed.status().message());
    o.routing_context = std::move(parsed).value();
  }
  if (const Value* filter = body.Get("filter")) {
    if (!filter->IsString()) return error("filter", fmt::format("filter must be a string, got {}", Quote(*filter)));
    o.filter = std::string(filter->String());
  }
  return Status::OK();
}

Result<SearchRequest> ReadRequest(const Value& body, const RequestLimits& limits, const FieldErrors& error) {
  if (!body.IsObject()) return error("body", fmt::format("body must be a JSON object, got {}", Quote(body)));
  ASSIGN_OR_RETURN(Fields fields, Fields::Of(body, error));
  SearchRequest req;
  RETURN_IF_ERROR(ReadQueries(fields, limits, error, req));
  RETURN_IF_ERROR(ReadOptions(fields, limits, error, req));
  return req;
}

}  // namespace

Result<SearchRequest> ParseSearchRequest(std::string_view body, const RequestLimits& limits, std::string* field) {
  const FieldErrors error{field};
  if (JsonNestsDeeperThan(body, kMaxBodyNesting)) {
    return error("body", fmt::format("body nests arrays and objects deeper than {} levels", kMaxBodyNesting));
  }
  // Numbers correctly rounded (as nlohmann's strtod reads them); strings checked to be UTF-8.
  constexpr unsigned kFlags = rapidjson::kParseFullPrecisionFlag | rapidjson::kParseValidateEncodingFlag;
  // The values of a single query's body fit a buffer each thread keeps, which spares a 64 KiB
  // allocation (and the allocator's consolidation its free sets off) per request; a larger body's
  // values go on to chunks of the heap, freed with the document.
  alignas(16) thread_local char first_chunk[kKeptValueBytes];
  rapidjson::MemoryPoolAllocator<> values(first_chunk, sizeof first_chunk);
  rapidjson::Document doc(&values);
  doc.Parse<kFlags>(body.data(), body.size());
  if (!doc.HasParseError()) return ReadRequest(Value(doc), limits, error);
  return error("body", fmt::format("body is not valid JSON ({} at byte {})", rapidjson::GetParseError_En(doc.GetParseError()),
                                   doc.GetErrorOffset()));
}

}  // namespace shardvec::serve
