// Value types shared by the writer, the reader and the CLI.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "shardvec/status.h"

namespace shardvec {

// Distance metrics sqlite-vec supports. dot_product is rejected at config time.
enum class Metric { kCosine, kL2 };
std::string_view MetricName(Metric metric);
// Parses "cosine" / "l2"; anything else (including "dot_product") is an InvalidArgument naming `field`.
Result<Metric> ParseMetric(std::string_view text, std::string_view field = "metric");

enum class Strategy { kCluster, kLsh, kExplicit, kCel };
std::string_view StrategyName(Strategy strategy);
Result<Strategy> ParseStrategy(std::string_view text, std::string_view field = "strategy");

// An original record id keeps its type: int64 or string.
using RecordId = std::variant<int64_t, std::string>;
std::string RecordIdToString(const RecordId& id);

// Bytes in a CEL routing context or a categorical routing token; distinct from a UTF-8 string.
struct Bytes {
  std::string data;
  friend auto operator<=>(const Bytes&, const Bytes&) = default;
};

// One value of a CEL routing context: null, bool, int, uint, double, string or bytes. A categorical
// routing token (routing_values) is an int, a string or bytes.
using RoutingValue = std::variant<std::monostate, bool, int64_t, uint64_t, double, std::string, Bytes>;
// The variables a CEL expression reads, by name (CEL sharding; docs/routing.md#cel).
using RoutingContext = std::map<std::string, RoutingValue, std::less<>>;
// For messages: 5, 5u, 2.5, "eu", b"\x00\xff", true, null.
std::string RoutingValueToString(const RoutingValue& value);

// A dense row-major float32 matrix (centroids, hyperplanes, query batches).
struct Matrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> data;  // rows * cols values

  const float* row(int64_t i) const { return data.data() + i * cols; }
  float* row(int64_t i) { return data.data() + i * cols; }
};

// A row-major float32 matrix someone else owns (a caller's query batch, read in place): valid while
// the owner keeps the rows alive. A Matrix converts to one.
struct MatrixView {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  MatrixView() = default;
  MatrixView(const float* values, int64_t num_rows, int64_t num_cols) : data(values), rows(num_rows), cols(num_cols) {}
  MatrixView(const Matrix& m) : data(m.data.data()), rows(m.rows), cols(m.cols) {}  // NOLINT: implicit on purpose
  const float* row(int64_t i) const { return data + i * cols; }
};

// How rows map to shards: resolved once by the writer (or a distributed driver, which ships it to
// every task) and persisted in the snapshot, so the reader routes queries by the same rules.
struct RoutingPlan {
  Strategy strategy = Strategy::kCluster;
  Metric metric = Metric::kCosine;
  int64_t dim = 0;
  int64_t num_dbs = 0;
  int64_t num_probes = 1;
  int64_t num_hash_bits = 0;          // LSH
  std::optional<Matrix> centroids;    // CLUSTER
  std::optional<Matrix> hyperplanes;  // LSH
  // CEL: the expression, its variables' declared types ("int", "uint", "double", "string", "bytes",
  // "bool") and, for categorical routing, the tokens whose index is the shard.
  std::string cel_expr;
  std::map<std::string, std::string> cel_columns;
  std::optional<std::vector<RoutingValue>> routing_values;
};

// One vector to write.
struct Record {
  RecordId id;
  std::vector<float> vector;
  // A JSON object as text, or none. Stored in vec_payloads; returned with hits.
  std::optional<std::string> payload_json;
  // The target shard under EXPLICIT sharding.
  std::optional<int64_t> shard_id;
  // The variables the CEL expression reads under CEL sharding.
  std::optional<RoutingContext> routing_context;
};

}  // namespace shardvec
