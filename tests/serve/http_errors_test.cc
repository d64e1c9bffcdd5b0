// The service's error answers: status codes and the JSON error body.
#include "serve/http_errors.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace shardvec::serve {
namespace {

TEST(HttpErrorsTest, EngineCodesBecomeHttpStatuses) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kFailedPrecondition), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kCorruption), 500);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 500);
  EXPECT_EQ(HttpStatusFor(StatusCode::kIOError), 500);
}

TEST(HttpErrorsTest, ErrorJsonNamesTheFieldAndStaysValidJson) {
  const nlohmann::json e = nlohmann::json::parse(ErrorJson("InvalidArgument", "top_k must be 1..4096, got 0", "top_k"));
  EXPECT_EQ(e, (nlohmann::json{{"error", {{"code", "InvalidArgument"}, {"message", "top_k must be 1..4096, got 0"},
                                          {"field", "top_k"}}}}));
  EXPECT_FALSE(nlohmann::json::parse(ErrorJson("NotFound", "x"))["error"].contains("field"));
  // A message quoting bytes that are not UTF-8 still gives valid JSON.
  EXPECT_TRUE(nlohmann::json::accept(ErrorJson("InvalidArgument", "bad \xFF byte", "f\xFE")));
}

}  // namespace
}  // namespace shardvec::serve
