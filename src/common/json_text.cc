#include "common/json_text.h"

namespace shardvec {
namespace {

template <typename Json>
void DumpPython(const Json& value, std::string& out) {
  if (value.is_object()) {
    out += '{';
    bool first = true;
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (!first) out += ", ";
      first = false;
      out += Json(it.key()).dump(-1, ' ', /*ensure_ascii=*/true);
      out += ": ";
      DumpPython(it.value(), out);
    }
    out += '}';
  } else if (value.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& item : value) {
      if (!first) out += ", ";
      first = false;
      DumpPython(item, out);
    }
    out += ']';
  } else {
    out += value.dump(-1, ' ', /*ensure_ascii=*/true);
  }
}

}  // namespace

std::string PythonJsonDumps(const nlohmann::json& value) {
  std::string out;
  DumpPython(value, out);
  return out;
}

std::string PythonJsonDumps(const nlohmann::ordered_json& value) {
  std::string out;
  DumpPython(value, out);
  return out;
}

std::string CompactJsonDumps(const nlohmann::json& value) { return value.dump(-1, ' ', true); }

}  // namespace shardvec
