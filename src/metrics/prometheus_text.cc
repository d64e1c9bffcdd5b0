#include "metrics/prometheus_text.h"

#include <charconv>
#include <cmath>

namespace shardvec {

std::string PromNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 9.007199254740992e15) {
    return std::to_string(static_cast<long long>(value));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, end);
}

std::string PromEscapeLabelValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string PromEscapeHelp(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string RenderExposition(const std::vector<PromFamily>& families) {
  std::string out;
  for (const PromFamily& f : families) {
    out += "# HELP " + f.name + " " + PromEscapeHelp(f.help) + "\n";
    out += "# TYPE " + f.name + " " + f.type + "\n";
    for (const PromSample& s : f.samples) {
      out += f.name + s.suffix;
      if (!s.labels.empty()) {
        out += "{";
        for (size_t i = 0; i < s.labels.size(); ++i) {
          if (i > 0) out += ",";
          out += s.labels[i].first + "=\"" + PromEscapeLabelValue(s.labels[i].second) + "\"";
        }
        out += "}";
      }
      out += " " + PromNumber(s.value) + "\n";
    }
  }
  return out;
}

}  // namespace shardvec
