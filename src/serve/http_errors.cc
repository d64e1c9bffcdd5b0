#include "serve/http_errors.h"

#include <nlohmann/json.hpp>

#include "common/json_text.h"

namespace shardvec::serve {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

std::string ErrorJson(std::string_view code, std::string_view message, std::string_view field) {
  nlohmann::json error = {{"code", code}, {"message", message}};
  if (!field.empty()) error["field"] = field;
  return SafeJsonDump({{"error", std::move(error)}});
}

}  // namespace shardvec::serve
