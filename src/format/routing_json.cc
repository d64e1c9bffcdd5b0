#include "format/routing_json.h"

#include <fmt/format.h>

#include "common/json_text.h"
#include "common/status_macros.h"

namespace shardvec {
namespace {

constexpr std::string_view kBytesHexKey = "__bytes_hex__";

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<Bytes> FromHex(std::string_view hex, std::string_view field) {
  Bytes out;
  if (hex.size() % 2 != 0) {
    return Status::InvalidArgument(fmt::format("{}: {} '{}' has an odd number of hex digits", field, kBytesHexKey, hex));
  }
  out.data.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexDigit(hex[i]);
    const int lo = HexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument(fmt::format("{}: {} '{}' is not hex", field, kBytesHexKey, hex));
    }
    out.data.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

}  // namespace

nlohmann::json RoutingValueToJson(const RoutingValue& value) {
  return std::visit(
      [](const auto& v) -> nlohmann::json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) return nullptr;
        else if constexpr (std::is_same_v<T, Bytes>) return {{std::string(kBytesHexKey), ToHex(v.data)}};
        else return v;
      },
      value);
}

Result<RoutingValue> RoutingValueFromJson(const nlohmann::json& json, std::string_view field) {
  switch (json.type()) {
    case nlohmann::json::value_t::null: return RoutingValue{};
    case nlohmann::json::value_t::boolean: return RoutingValue{json.get<bool>()};
    case nlohmann::json::value_t::number_integer: return RoutingValue{json.get<int64_t>()};
    case nlohmann::json::value_t::number_unsigned: {
      const auto u = json.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return RoutingValue{static_cast<int64_t>(u)};
      return RoutingValue{u};
    }
    case nlohmann::json::value_t::number_float: return RoutingValue{json.get<double>()};
    case nlohmann::json::value_t::string: return RoutingValue{json.get<std::string>()};
    case nlohmann::json::value_t::object:
      if (json.size() == 1 && json.contains(kBytesHexKey) && json[std::string(kBytesHexKey)].is_string()) {
        ASSIGN_OR_RETURN(Bytes bytes, FromHex(json[std::string(kBytesHexKey)].get<std::string>(), field));
        return RoutingValue{std::move(bytes)};
      }
      break;
    default: break;
  }
  return Status::InvalidArgument(fmt::format(
      "{} is {}; expected a number, string, bool, null or {{\"{}\": \"<hex>\"}}", field, SafeJsonDump(json), kBytesHexKey));
}

nlohmann::json RoutingValuesToJson(const std::vector<RoutingValue>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (const RoutingValue& v : values) out.push_back(RoutingValueToJson(v));
  return out;
}

Result<std::vector<RoutingValue>> RoutingValuesFromJson(const nlohmann::json& json, std::string_view field) {
  if (!json.is_array()) return Status::InvalidArgument(fmt::format("{} must be a list (got {})", field, SafeJsonDump(json)));
  std::vector<RoutingValue> out;
  out.reserve(json.size());
  for (size_t i = 0; i < json.size(); ++i) {
    ASSIGN_OR_RETURN(RoutingValue v, RoutingValueFromJson(json[i], fmt::format("{}[{}]", field, i)));
    out.push_back(std::move(v));
  }
  return out;
}

Result<RoutingContext> RoutingContextFromJson(const nlohmann::json& json, std::string_view field) {
  if (!json.is_object()) {
    return Status::InvalidArgument(fmt::format("{} must be an object of variable -> value (got {})", field, SafeJsonDump(json)));
  }
  RoutingContext context;
  for (const auto& [name, value] : json.items()) {
    ASSIGN_OR_RETURN(context[name], RoutingValueFromJson(value, fmt::format("{}['{}']", field, name)));
  }
  return context;
}

}  // namespace shardvec
