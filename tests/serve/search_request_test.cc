// POST /v1/search bodies: what is accepted and how each bad body is refused, naming the field.
#include "serve/search_request.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace shardvec::serve {
namespace {

const RequestLimits kLimits{/*dim=*/3, /*max_top_k=*/100, /*max_batch_queries=*/4};

// The refusal of `body`: its field, and that the message names `words`.
void ExpectRefused(const std::string& body, const std::string& field, const std::string& words) {
  std::string got;
  Result<SearchRequest> r = ParseSearchRequest(body, kLimits, &got);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << body;
  EXPECT_EQ(got, field) << body << " -> " << r.status().message();
  EXPECT_NE(r.status().message().find(words), std::string::npos) << body << " -> " << r.status().message();
}

TEST(SearchRequestTest, OneVectorWithDefaults) {
  Result<SearchRequest> r = ParseSearchRequest(R"({"vector": [1, 2.5, -3]})", kLimits);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->batch);
  EXPECT_EQ(r->top_k, kDefaultTopK);
  EXPECT_EQ(r->queries.rows, 1);
  EXPECT_EQ(r->queries.data, (std::vector<float>{1, 2.5f, -3}));
  EXPECT_FALSE(r->options.num_probes || r->options.shard_ids || r->options.routing_context || r->options.filter);
}

TEST(SearchRequestTest, BatchAndEveryOption) {
  Result<SearchRequest> r = ParseSearchRequest(
      R"({"vectors": [[1,2,3],[4,5,6]], "top_k": 7, "num_probes": 2, "filter": "lang == 'en'",
          "routing_context": {"region": "eu", "n": 3}, "sublist_probes": 5, "max_extra_probes": 0})",
      kLimits);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->batch);
  EXPECT_EQ(r->queries.rows, 2);
  EXPECT_EQ(r->queries.data, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r->top_k, 7);
  EXPECT_EQ(r->options.num_probes, 2);
  EXPECT_EQ(r->options.sublist_probes, 5);
  EXPECT_EQ(r->options.max_extra_probes, 0);
  EXPECT_EQ(r->options.filter, "lang == 'en'");
  ASSERT_TRUE(r->options.routing_context);
  EXPECT_EQ(std::get<std::string>(r->options.routing_context->at("region")), "eu");
  EXPECT_EQ(std::get<int64_t>(r->options.routing_context->at("n")), 3);
  Result<SearchRequest> ids = ParseSearchRequest(R"({"vector": [0,0,1], "shard_ids": [0, 3]})", kLimits);
  ASSERT_TRUE(ids.ok()) << ids.status().message();
  EXPECT_EQ(ids->options.shard_ids, (std::vector<int64_t>{0, 3}));
}

TEST(SearchRequestTest, MalformedBodiesNameTheBody) {
  ExpectRefused("", "body", "not valid JSON");
  ExpectRefused("{\"vector\": [1,2,", "body", "not valid JSON");
  ExpectRefused("[1,2,3]", "body", "must be a JSON object");
  ExpectRefused(std::string(100, '[') + std::string(100, ']'), "body", "deeper than");
}

TEST(SearchRequestTest, VectorsOfTheWrongShapeOrTypeAreRefused) {
  ExpectRefused(R"({"top_k": 3})", "vector", "one of \"vector\"");
  ExpectRefused(R"({"vector": [1,2,3], "vectors": [[1,2,3]]})", "vectors", "not both");
  ExpectRefused(R"({"vector": [1,2]})", "vector", "has 2 values, but the snapshot's dim is 3");
  ExpectRefused(R"({"vector": "1,2,3"})", "vector", "must be an array of 3 numbers");
  ExpectRefused(R"({"vector": [1,"2",3]})", "vector", "vector[1] must be a finite float32 number");
  ExpectRefused(R"({"vector": [1,true,3]})", "vector", "vector[1]");
  ExpectRefused(R"({"vector": [1,1e39,3]})", "vector", "vector[1]");
  ExpectRefused(R"({"vectors": []})", "vectors", "1..4 query vectors");
  ExpectRefused(R"({"vectors": [[1,2,3],[1,2,3],[1,2,3],[1,2,3],[1,2,3]]})", "vectors", "got 5 of them");
  ExpectRefused(R"({"vectors": [[1,2,3],[1,2]]})", "vectors[1]", "vectors[1] has 2 values");
}

TEST(SearchRequestTest, OptionsOutOfRangeOrOfTheWrongTypeAreRefused) {
  ExpectRefused(R"({"vector": [1,2,3], "top_k": 0})", "top_k", "top_k must be 1..100, got 0");
  ExpectRefused(R"({"vector": [1,2,3], "top_k": 5000})", "top_k", "got 5000");
  ExpectRefused(R"({"vector": [1,2,3], "top_k": 2.5})", "top_k", "must be an integer");
  ExpectRefused(R"({"vector": [1,2,3], "top_k": "10"})", "top_k", "must be an integer");
  ExpectRefused(R"({"vector": [1,2,3], "top_k": 18446744073709551615})", "top_k", "must be an integer");
  ExpectRefused(R"({"vector": [1,2,3], "num_probes": 0})", "num_probes", ">= 1");
  ExpectRefused(R"({"vector": [1,2,3], "max_extra_probes": -1})", "max_extra_probes", ">= 0");
  ExpectRefused(R"({"vector": [1,2,3], "shard_ids": []})", "shard_ids", "non-empty array");
  ExpectRefused(R"({"vector": [1,2,3], "shard_ids": [0, "x"]})", "shard_ids[1]", "must be an integer");
  ExpectRefused(R"({"vector": [1,2,3], "routing_context": [1]})", "routing_context", "must be an object");
  ExpectRefused(R"({"vector": [1,2,3], "routing_context": {"a": [1]}})", "routing_context", "routing_context");
  ExpectRefused(R"({"vector": [1,2,3], "filter": 3})", "filter", "filter must be a string");
}

TEST(SearchRequestTest, AnIntegerPastInt64IsANumberAndOnePastADoubleIsRefused) {
  // An integer literal past 2^64 is a number like any other (float32 holds it).
  Result<SearchRequest> big = ParseSearchRequest(R"({"vector": [1, 100000000000000000000, 3], "top_k": 2})", kLimits);
  ASSERT_TRUE(big.ok()) << big.status().message();
  EXPECT_EQ(big->queries.data, (std::vector<float>{1, 1e20f, 3}));
  EXPECT_EQ(big->top_k, 2);
  ExpectRefused(R"({"vector": [1, 1e400, 3]})", "body", "Number too big");
  ExpectRefused(R"({"vector": [1, 2, 3], "top_k": 100000000000000000000})", "top_k", "must be an integer");
  ExpectRefused(R"({"vector": [1, 2, 3], "top_k": 1e400, "x": [[[[[1]]]]]})", "body", "deeper than 4");
}

TEST(SearchRequestTest, NumbersAreReadAsStrtodReadsThemAndTextMustBeUtf8) {
  // Texts just past the midpoint of two float32 values, by 0.6 of a double's step: a parser that
  // reads them a step short lands on the midpoint and may round to the other float.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> value(-1e3f, 1e3f);
  for (int round = 0; round < 300; ++round) {
    std::vector<std::string> texts;
    for (int i = 0; i < 3; ++i) {
      const float f = value(rng) * std::pow(10.0f, static_cast<float>(static_cast<int>(rng() % 20) - 10));
      const double mid = (static_cast<double>(f) + static_cast<double>(std::nextafter(f, INFINITY))) / 2;
      const long double past = static_cast<long double>(mid) + 0.6L * (std::nextafter(mid, INFINITY) - mid);
      texts.push_back(fmt::format("{:.40Le}", past));
    }
    const std::string body = fmt::format(R"({{"vector": [{}]}})", fmt::join(texts, ","));
    Result<SearchRequest> r = ParseSearchRequest(body, kLimits);
    ASSERT_TRUE(r.ok()) << body << " -> " << r.status().message();
    for (size_t i = 0; i < 3; ++i) {
      ASSERT_EQ(r->queries.data[i], static_cast<float>(std::strtod(texts[i].c_str(), nullptr))) << texts[i];
    }
  }
  ExpectRefused("{\"vector\": [1,2,3], \"filter\": \"a == '\xff'\"}", "body", "not valid JSON");
}

TEST(SearchRequestTest, NestingUpToFourLevelsIsReadAndALaterFieldWins) {
  Result<SearchRequest> r = ParseSearchRequest(
      R"({"vectors": [[1,2,3]], "routing_context": {"k": {"bytes": [1]}}, "top_k": 3, "top_k": 4})", kLimits);
  ASSERT_FALSE(r.ok());  // the context's value is refused by the routing code, not as too deep
  EXPECT_EQ(r.status().message().find("deeper"), std::string::npos) << r.status().message();
  Result<SearchRequest> twice = ParseSearchRequest(R"({"vector": [1,2,3], "top_k": 3, "top_k": 4})", kLimits);
  ASSERT_TRUE(twice.ok()) << twice.status().message();
  EXPECT_EQ(twice->top_k, 4);
  ExpectRefused(R"({"vectors": [[[1,2,3]]], "x": [[[[1]]]]})", "body", "deeper than 4");
}

TEST(SearchRequestTest, UnknownFieldsAreRefusedByName) {
  ExpectRefused(R"({"vector": [1,2,3], "topk": 3})", "topk", "unknown field 'topk'");
  ExpectRefused(R"({"vector": [1,2,3], "num_probe": 3})", "num_probe", "a search takes: vector, vectors, top_k");
}

}  // namespace
}  // namespace shardvec::serve
