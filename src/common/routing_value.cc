// RoutingValueToString: CEL-literal-like text of a routing value for error messages.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "shardvec/types.h"

namespace shardvec {
namespace {

void AppendEscaped(std::string& out, std::string_view s, bool bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        // Strings keep their UTF-8 text; bytes show every non-printable-ASCII byte as \xHH.
        if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80)) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

}  // namespace

std::string RoutingValueToString(const RoutingValue& value) {
  struct Visitor {
    std::string operator()(std::monostate) const { return "null"; }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(uint64_t v) const { return std::to_string(v) + "u"; }
    std::string operator()(double v) const {
      if (std::isnan(v)) return "nan";
      if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.17g", v);
      // Prefer the shortest text that reads back as the same double.
      for (int precision = 1; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
        if (std::strtod(buf, nullptr) == v) break;
      }
      std::string text(buf);
      if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
      return text;
    }
    std::string operator()(const std::string& s) const {
      std::string out = "\"";
      AppendEscaped(out, s, false);
      return out + "\"";
    }
    std::string operator()(const Bytes& b) const {
      std::string out = "b\"";
      AppendEscaped(out, b.data, true);
      return out + "\"";
    }
  };
  return std::visit(Visitor{}, value);
}

}  // namespace shardvec
