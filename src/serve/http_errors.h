// The service's error answers: which HTTP status an engine error becomes, and the JSON body
// {"error": {"code", "message"[, "field"]}} every 4xx and 5xx answer carries.
#pragma once

#include <string>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec::serve {

// InvalidArgument 400 (the request is wrong), FailedPrecondition and Unavailable 503 (try again),
// anything else 500 (the store or the snapshot failed, not the request).
int HttpStatusFor(StatusCode code);

// {"error": {"code": <code>, "message": <message>}} plus "field" when not empty; never throws
// (bytes that are not UTF-8 come out as U+FFFD).
std::string ErrorJson(std::string_view code, std::string_view message, std::string_view field = {});

}  // namespace shardvec::serve
