// The body of POST /v1/search, parsed and checked: one query ("vector") or a batch ("vectors") and
// the search options. Pure: no I/O, no reader.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shardvec/reader.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec::serve {

inline constexpr int64_t kDefaultTopK = 10;

// What a request may ask for.
struct RequestLimits {
  int64_t dim = 0;                // every query vector's length (the snapshot's dim)
  int64_t max_top_k = 4096;       // top_k is 1..max_top_k
  int64_t max_batch_queries = 1;  // "vectors" holds 1..max_batch_queries rows
};

struct SearchRequest {
  Matrix queries;      // one row for "vector", one per row of "vectors"
  bool batch = false;  // "vectors" was given: the answer is a list
  int64_t top_k = kDefaultTopK;
  SearchOptions options;
};

// The fields a search body may have.
inline constexpr std::string_view kSearchFields[] = {"vector", "vectors", "top_k", "num_probes", "shard_ids",
                                                     "routing_context", "filter", "sublist_probes",
                                                     "max_extra_probes"};

// `body` as a search request. On error: InvalidArgument whose message names the field and the value,
// and *field (when not null) set to that field ("body" when the text is not a JSON object).
Result<SearchRequest> ParseSearchRequest(std::string_view body, const RequestLimits& limits,
                                         std::string* field = nullptr);

}  // namespace shardvec::serve
