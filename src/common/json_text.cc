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

bool JsonNestsDeeperThan(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // skip the escaped character, which may be a quote
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

std::string SafeJsonDump(const nlohmann::json& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

std::string ReadablePayloadJson(std::string_view stored) {
  const size_t first = stored.find_first_not_of(" \t\r\n");
  const bool object = first != std::string_view::npos && stored[first] == '{';
  // No NUL: nlohmann's lexer takes one for the end of the input, and valid JSON never holds a raw one.
  const bool no_nul = stored.find('\0') == std::string_view::npos;
  if (object && no_nul && !JsonNestsDeeperThan(stored) && nlohmann::json::accept(stored)) return std::string(stored);
  return SafeJsonDump(nlohmann::json{{std::string(kRawPayloadKey), std::string(stored)}});
}

}  // namespace shardvec
