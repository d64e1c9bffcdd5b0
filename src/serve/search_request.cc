#include "serve/search_request.h"

#include <fmt/format.h>

#include <algorithm>
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

// An error about `name`; remembers the field for the caller.
struct FieldErrors {
  std::string* field;
  Status operator()(std::string_view name, std::string message) const {
    if (field != nullptr) *field = std::string(name);
    return Status::InvalidArgument(std::move(message));
  }
};

// A value quoted in a message, cut short when long (a body may be megabytes).
std::string Quote(const json& value) {
  std::string text = SafeJsonDump(value);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

Result<int64_t> Integer(const json& value, std::string_view name, const FieldErrors& error) {
  if (value.is_number_integer() && !(value.is_number_unsigned() &&
                                     value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
    return value.get<int64_t>();
  }
  return error(name, fmt::format("{} must be an integer, got {}", name, Quote(value)));
}

// One query vector: `dim` finite numbers that fit float32.
Status ReadVector(const json& value, std::string_view name, int64_t dim, const FieldErrors& error, float* out) {
  if (!value.is_array()) {
    return error(name, fmt::format("{} must be an array of {} numbers, got {}", name, dim, Quote(value)));
  }
  if (static_cast<int64_t>(value.size()) != dim) {
    return error(name, fmt::format("{} has {} values, but the snapshot's dim is {}", name, value.size(), dim));
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const json& x = value[i];
    const double v = x.is_number() ? x.get<double>() : std::numeric_limits<double>::quiet_NaN();
    if (!x.is_number() || !std::isfinite(v) || std::fabs(v) > std::numeric_limits<float>::max()) {
      return error(name, fmt::format("{}[{}] must be a finite float32 number, got {}", name, i, Quote(x)));
    }
    out[i] = static_cast<float>(v);
  }
  return Status::OK();
}

Status ReadQueries(const json& body, const RequestLimits& limits, const FieldErrors& error, SearchRequest& req) {
  const bool one = body.contains("vector");
  const bool many = body.contains("vectors");
  if (one == many) {
    return error(one ? "vectors" : "vector", one ? "give either \"vector\" or \"vectors\", not both"
                                                 : "one of \"vector\" (a query) or \"vectors\" (a batch) is required");
  }
  req.batch = many;
  req.queries.cols = limits.dim;
  if (one) {
    req.queries.rows = 1;
    req.queries.data.resize(static_cast<size_t>(limits.dim));
    return ReadVector(body["vector"], "vector", limits.dim, error, req.queries.data.data());
  }
  const json& rows = body["vectors"];
  if (!rows.is_array() || rows.empty() || static_cast<int64_t>(rows.size()) > limits.max_batch_queries) {
    return error("vectors", fmt::format("vectors must be an array of 1..{} query vectors, got {}",
                                        limits.max_batch_queries,
                                        rows.is_array() ? fmt::format("{} of them", rows.size()) : Quote(rows)));
  }
  req.queries.rows = static_cast<int64_t>(rows.size());
  req.queries.data.resize(rows.size() * static_cast<size_t>(limits.dim));
  for (size_t r = 0; r < rows.size(); ++r) {
    RETURN_IF_ERROR(ReadVector(rows[r], fmt::format("vectors[{}]", r), limits.dim, error, req.queries.row(static_cast<int64_t>(r))));
  }
  return Status::OK();
}

// An optional integer field that must be >= `min`.
Result<std::optional<int64_t>> OptionalInteger(const json& body, std::string_view name, int64_t min,
                                               const FieldErrors& error) {
  if (!body.contains(name)) return std::optional<int64_t>();
  ASSIGN_OR_RETURN(int64_t value, Integer(body[name], name, error));
  if (value < min) return error(name, fmt::format("{} must be >= {}, got {}", name, min, value));
  return std::optional<int64_t>(value);
}

Status ReadOptions(const json& body, const RequestLimits& limits, const FieldErrors& error, SearchRequest& req) {
  if (body.contains("top_k")) {
    ASSIGN_OR_RETURN(req.top_k, Integer(body["top_k"], "top_k", error));
    if (req.top_k < 1 || req.top_k > limits.max_top_k) {
      return error("top_k", fmt::format("top_k must be 1..{}, got {}", limits.max_top_k, req.top_k));
    }
  }
  SearchOptions& o = req.options;
  ASSIGN_OR_RETURN(o.num_probes, OptionalInteger(body, "num_probes", 1, error));
  ASSIGN_OR_RETURN(o.sublist_probes, OptionalInteger(body, "sublist_probes", 1, error));
  ASSIGN_OR_RETURN(o.max_extra_probes, OptionalInteger(body, "max_extra_probes", 0, error));
  if (body.contains("shard_ids")) {
    const json& ids = body["shard_ids"];
    if (!ids.is_array() || ids.empty()) {
      return error("shard_ids", fmt::format("shard_ids must be a non-empty array of shard ids, got {}", Quote(ids)));
    }
    o.shard_ids.emplace();
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSIGN_OR_RETURN(int64_t id, Integer(ids[i], fmt::format("shard_ids[{}]", i), error));
      o.shard_ids->push_back(id);
    }
  }
  if (body.contains("routing_context")) {
    const json& context = body["routing_context"];
    Result<RoutingContext> parsed = context.is_object()
                                        ? RoutingContextFromJson(context, "routing_context")
                                        : Result<RoutingContext>(Status::InvalidArgument(fmt::format(
                                              "routing_context must be an object of variable: value, got {}", Quote(context))));
    if (!parsed.ok()) return error("routing_context", parsed.status().message());
    o.routing_context = std::move(parsed).value();
  }
  if (body.contains("filter")) {
    const json& filter = body["filter"];
    if (!filter.is_string()) return error("filter", fmt::format("filter must be a string, got {}", Quote(filter)));
    o.filter = filter.get<std::string>();
  }
  return Status::OK();
}

}  // namespace

Result<SearchRequest> ParseSearchRequest(std::string_view body, const RequestLimits& limits, std::string* field) {
  const FieldErrors error{field};
  if (JsonNestsDeeperThan(body, kMaxBodyNesting)) {
    return error("body", fmt::format("body nests arrays and objects deeper than {} levels", kMaxBodyNesting));
  }
  json parsed = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return error("body", "body is not valid JSON");
  if (!parsed.is_object()) return error("body", fmt::format("body must be a JSON object, got {}", Quote(parsed)));
  for (const auto& item : parsed.items()) {
    if (std::find(std::begin(kSearchFields), std::end(kSearchFields), item.key()) == std::end(kSearchFields)) {
      std::string known;
      for (std::string_view name : kSearchFields) known += fmt::format("{}{}", known.empty() ? "" : ", ", name);
      return error(item.key(), fmt::format("unknown field '{}' (a search takes: {})", EscapeForDisplay(item.key()), known));
    }
  }
  SearchRequest req;
  RETURN_IF_ERROR(ReadQueries(parsed, limits, error, req));
  RETURN_IF_ERROR(ReadOptions(parsed, limits, error, req));
  return req;
}

}  // namespace shardvec::serve
