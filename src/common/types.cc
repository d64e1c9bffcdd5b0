#include "shardvec/types.h"

#include <fmt/format.h>

namespace shardvec {

std::string_view MetricName(Metric metric) { return metric == Metric::kL2 ? "l2" : "cosine"; }

Result<Metric> ParseMetric(std::string_view text, std::string_view field) {
  if (text == "cosine") return Metric::kCosine;
  if (text == "l2") return Metric::kL2;
  if (text == "dot_product") {
    return Status::InvalidArgument(fmt::format(
        "{} 'dot_product' is not supported by sqlite-vec; use cosine or l2", field));
  }
  return Status::InvalidArgument(
      fmt::format("{} '{}' is not supported; use cosine or l2", field, text));
}

std::string_view StrategyName(Strategy strategy) {
  switch (strategy) {
    case Strategy::kCluster: return "cluster";
    case Strategy::kLsh: return "lsh";
    case Strategy::kExplicit: return "explicit";
    case Strategy::kCel: return "cel";
  }
  return "unknown";
}

Result<Strategy> ParseStrategy(std::string_view text, std::string_view field) {
  if (text == "cluster") return Strategy::kCluster;
  if (text == "lsh") return Strategy::kLsh;
  if (text == "explicit") return Strategy::kExplicit;
  if (text == "cel") return Strategy::kCel;
  return Status::InvalidArgument(
      fmt::format("{} '{}' is not supported; use cluster, lsh, explicit or cel", field, text));
}

std::string RecordIdToString(const RecordId& id) {
  if (const auto* i = std::get_if<int64_t>(&id)) return std::to_string(*i);
  return std::get<std::string>(id);
}

}  // namespace shardvec
