// Prometheus text exposition format 0.0.4: pure rendering of metric families, no aggregation.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardvec {

struct PromSample {
  std::string suffix;                                       // "", "_bucket", "_sum", "_count", "_total"
  std::vector<std::pair<std::string, std::string>> labels;  // name, raw value (escaped when rendered)
  double value = 0;
};

struct PromFamily {
  std::string name;  // full metric name; samples are name + suffix
  std::string help;
  std::string type;  // "counter" | "gauge" | "histogram"
  std::vector<PromSample> samples;
};

// "3", "0.25", "1e-05", "+Inf", "-Inf", "NaN": integers without a fraction, others shortest round-trip.
std::string PromNumber(double value);
// Label values escape '\\', '"' and newline; HELP text escapes '\\' and newline.
std::string PromEscapeLabelValue(std::string_view value);
std::string PromEscapeHelp(std::string_view help);
// HELP and TYPE lines then the samples of each family, in the order given; ends with a newline.
std::string RenderExposition(const std::vector<PromFamily>& families);

}  // namespace shardvec
