// `shardvec build --strategy cel` and `search / route / info --routing-context` on CEL snapshots, run
// as a child process. Expected shards come from the inputs we wrote (categorical) or from xxh3_64
// computed here with libxxhash (hashed), independent of the CEL engine.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::CommandResult;
using testing::RunCli;
using testing::ShellQuote;

constexpr int kRows = 60;
const std::vector<std::string> kRegions = {"eu", "us", "apac"};

std::string Region(int row) { return kRegions[static_cast<size_t>(row % 3)]; }
std::string Tenant(int row) { return "tenant-" + std::to_string(row % 10); }
int64_t HashedShard(const std::string& tenant) {
  return static_cast<int64_t>(XXH3_64bits(tenant.data(), tenant.size()) % 4);
}

class CelCliTest : public ::testing::Test {
 protected:
  void SetUp() override { data_ = testing::RandomMatrix(kRows, 4, 23); }

  std::string Path(const std::string& name) const { return ShellQuote((tmp_ / name).string()); }
  std::string StoreArgs(const std::string& store) const {
    return " --store " + Path(store) + " --cache-dir " + Path(store + "-cache");
  }
  CommandResult Build(const std::string& store, const std::string& args) {
    return RunCli("build --quiet --json --metric l2 --store " + Path(store) + " --local-root " + Path("lr") + " " +
                  args);
  }
  std::string VectorJson(int row) const {
    json v = json::array();
    for (int j = 0; j < data_.cols; ++j) v.push_back(data_.row(row)[j]);
    return v.dump();
  }
  // A .jsonl input whose line i carries id i and, when `context` gives one, that routing_context.
  void WriteJsonl(const std::string& name, const std::function<std::optional<json>(int)>& context) {
    std::string text;
    for (int i = 0; i < kRows; ++i) {
      json line = {{"id", i}, {"vector", json::parse(VectorJson(i))}};
      if (auto c = context(i)) line["routing_context"] = *c;
      text += line.dump() + "\n";
    }
    testing::WriteText(tmp_ / name, text);
  }
  // Builds the categorical snapshot `region` over eu,us,apac (row i is in Region(i)).
  void BuildRegions() {
    WriteJsonl("regions.jsonl", [](int i) { return json{{"region", Region(i)}}; });
    auto r = Build("regions", "--input " + Path("regions.jsonl") +
                                  " --strategy cel --cel-expr region --cel-column region=string"
                                  " --routing-values eu,us,apac");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json out = json::parse(r.out);
    EXPECT_EQ(out["num_dbs"], 3);
    EXPECT_EQ(out["total_vectors"], kRows);
    for (const json& s : out["shards"]) EXPECT_EQ(s["row_count"], kRows / 3) << s.dump();
  }
  // The ids a --json search printed (one query).
  static std::set<int64_t> Ids(const CommandResult& r) {
    std::set<int64_t> ids;
    const json out = json::parse(r.out);
    for (const json& hit : out["results"]) ids.insert(hit["id"].get<int64_t>());
    return ids;
  }
  static constexpr const char* kQuery = " --query 0.1,0.2,0.3,0.4 --top-k 1000 --json";

  Matrix data_;
  testing::TempDir tmp_;
};

TEST_F(CelCliTest, CategoricalSearchReadsOnlyTheSelectedShard) {
  BuildRegions();
  for (size_t shard = 0; shard < kRegions.size(); ++shard) {
    auto r = RunCli("search" + StoreArgs("regions") + kQuery + " --routing-context region=" + kRegions[shard]);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["num_shards_queried"], 1);
    std::set<int64_t> expected;
    for (int i = 0; i < kRows; ++i) {
      if (Region(i) == kRegions[shard]) expected.insert(i);
    }
    EXPECT_EQ(Ids(r), expected) << kRegions[shard];

    auto route = RunCli("route" + StoreArgs("regions") + " --query 1,2,3,4 --routing-context region=" +
                        kRegions[shard]);
    ASSERT_EQ(route.exit_code, 0) << route.err;
    EXPECT_EQ(route.out, std::to_string(shard) + "\n");
  }
  // --shard-ids still bypasses routing.
  auto all = RunCli("search" + StoreArgs("regions") + kQuery + " --shard-ids 0,1,2");
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(Ids(all).size(), static_cast<size_t>(kRows));
}

TEST_F(CelCliTest, InfoShowsTheExpressionColumnsAndTokens) {
  BuildRegions();
  auto r = RunCli("info" + StoreArgs("regions") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json info = json::parse(r.out);
  EXPECT_EQ(info["sharding"], "cel");
  EXPECT_EQ(info["num_dbs"], 3);
  EXPECT_EQ(info["cel_expr"], "region");
  EXPECT_EQ(info["cel_columns"], json({{"region", "string"}}));
  EXPECT_EQ(info["routing_values"], json({"eu", "us", "apac"}));

  auto plain = RunCli("info" + StoreArgs("regions"));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_NE(plain.out.find("cel_expr       region\n"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find(R"(cel_columns    {"region":"string"})"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find(R"(routing_values ["eu","us","apac"])"), std::string::npos) << plain.out;
}

TEST_F(CelCliTest, HashedBucketsFollowXxh3OfTheTenant) {
  testing::WriteNpy(tmp_ / "v.npy", data_);
  std::string contexts;
  std::map<int64_t, int64_t> rows_per_shard;
  for (int i = 0; i < kRows; ++i) {
    contexts += json({{"tenant", Tenant(i)}}).dump() + "\n";
    ++rows_per_shard[HashedShard(Tenant(i))];
  }
  testing::WriteText(tmp_ / "ctx.jsonl", contexts);
  auto b = Build("hashed", "--input " + Path("v.npy") + " --strategy cel --num-dbs 4"
                           " --cel-expr 'shard_hash(tenant) % 4u' --cel-column tenant=string"
                           " --routing-context-file " + Path("ctx.jsonl"));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  json out = json::parse(b.out);
  EXPECT_EQ(out["num_dbs"], 4);
  std::map<int64_t, int64_t> built;
  for (const json& s : out["shards"]) built[s["db_id"].get<int64_t>()] = s["row_count"].get<int64_t>();
  EXPECT_EQ(built, rows_per_shard);

  for (int t = 0; t < 10; ++t) {
    const std::string tenant = Tenant(t);
    const int64_t shard = HashedShard(tenant);
    auto route = RunCli("route" + StoreArgs("hashed") + " --query 1,2,3,4 --json --routing-context tenant=" + tenant);
    ASSERT_EQ(route.exit_code, 0) << route.err;
    EXPECT_EQ(json::parse(route.out)["shard_ids"], json({shard})) << tenant;

    auto r = RunCli("search" + StoreArgs("hashed") + kQuery + " --routing-context tenant=" + tenant);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::set<int64_t> expected;  // every row whose tenant lands in the same bucket
    for (int i = 0; i < kRows; ++i) {
      if (HashedShard(Tenant(i)) == shard) expected.insert(i);
    }
    EXPECT_EQ(Ids(r), expected) << tenant;
  }
}

TEST_F(CelCliTest, IntTokensFromTheCommaFormAndBytesTokens) {
  // int categorical: zone in 10,20,30, contexts from --routing-context-file.
  testing::WriteNpy(tmp_ / "v.npy", data_);
  std::string contexts;
  for (int i = 0; i < kRows; ++i) contexts += "{\"zone\": " + std::to_string(10 * (1 + i % 3)) + "}\n";
  testing::WriteText(tmp_ / "zones.jsonl", contexts);
  auto b = Build("zones", "--input " + Path("v.npy") + " --strategy cel --cel-expr zone --cel-column zone=int"
                          " --routing-values '10, 20, 30' --routing-context-file " + Path("zones.jsonl"));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  auto info = RunCli("info" + StoreArgs("zones") + " --json");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(json::parse(info.out)["routing_values"], json({10, 20, 30}));
  auto r = RunCli("search" + StoreArgs("zones") + kQuery + " --routing-context zone=20");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<int64_t> expected;
  for (int i = 1; i < kRows; i += 3) expected.insert(i);
  EXPECT_EQ(Ids(r), expected);

  // bytes categorical: tokens "ab", "cd" as text (their UTF-8 bytes); .jsonl contexts in hex.
  WriteJsonl("keys.jsonl", [](int i) { return json{{"key", {{"__bytes_hex__", i % 2 ? "6364" : "6162"}}}}; });
  b = Build("keys", "--input " + Path("keys.jsonl") +
                        " --strategy cel --cel-expr key --cel-column key=bytes --routing-values ab,cd");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  info = RunCli("info" + StoreArgs("keys") + " --json");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(json::parse(info.out)["routing_values"],
            json::parse(R"([{"__bytes_hex__": "6162"}, {"__bytes_hex__": "6364"}])"));
  auto route = RunCli("route" + StoreArgs("keys") + " --query 1,2,3,4 --routing-context key=cd");
  ASSERT_EQ(route.exit_code, 0) << route.err;
  EXPECT_EQ(route.out, "1\n");

  // The same tokens from --routing-values-file.
  testing::WriteText(tmp_ / "tokens.json", R"([{"__bytes_hex__": "6162"}, {"__bytes_hex__": "6364"}])");
  b = Build("keys2", "--input " + Path("keys.jsonl") + " --strategy cel --cel-expr key --cel-column key=bytes"
                     " --routing-values-file " + Path("tokens.json"));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  r = RunCli("search" + StoreArgs("keys2") + kQuery + " --routing-context key=ab");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expected.clear();
  for (int i = 0; i < kRows; i += 2) expected.insert(i);
  EXPECT_EQ(Ids(r), expected);
}

TEST_F(CelCliTest, QueryErrorsNameTheKeyTheValueAndTheType) {
  BuildRegions();
  testing::WriteNpy(tmp_ / "v.npy", data_);
  std::string contexts;
  for (int i = 0; i < kRows; ++i) contexts += "{\"zone\": " + std::to_string(i % 3) + "}\n";
  testing::WriteText(tmp_ / "zones.jsonl", contexts);
  ASSERT_EQ(Build("zones", "--input " + Path("v.npy") + " --strategy cel --num-dbs 3 --cel-expr zone"
                           " --cel-column zone=int --routing-context-file " + Path("zones.jsonl"))
                .exit_code,
            0);
  ASSERT_EQ(Build("lsh", "--input " + Path("v.npy") + " --strategy lsh --num-dbs 2").exit_code, 0);

  struct Case {
    std::string command;
    std::string store;
    std::string args;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {"search", "regions", "", {"CEL sharding requires routing_context"}},
      {"route", "regions", "", {"CEL sharding requires routing_context"}},
      {"search", "regions", " --routing-context region=mars", {"\"mars\"", "not in routing_values"}},
      {"route", "regions", " --routing-context region=mars", {"\"mars\"", "not in routing_values"}},
      {"search", "regions", " --routing-context planet=eu", {"planet=eu", "'planet' is not a variable", "region"}},
      {"search", "regions", " --routing-context region", {"'region' must look like KEY=VALUE"}},
      {"search", "zones", " --routing-context zone=abc", {"zone=abc", "'abc'", "int", "cel_columns['zone']"}},
      {"route", "zones", " --routing-context zone=1.5", {"'1.5'", "int"}},
      {"search", "zones", " --routing-context zone=7", {"shard_id 7 outside [0, 3)"}},
      {"search", "lsh", " --routing-context region=eu",
       {"--routing-context applies to CEL snapshots; this one uses lsh"}},
  };
  for (const Case& tc : cases) {
    const std::string args = tc.command + StoreArgs(tc.store) + " --query 1,2,3,4" + tc.args;
    auto r = RunCli(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.out;
    EXPECT_TRUE(r.out.empty()) << args << "\n" << r.out;
    for (const std::string& part : tc.expect) {
      EXPECT_NE(r.err.find(part), std::string::npos) << args << "\nmissing: " << part << "\n" << r.err;
    }
  }
  // The zone snapshot answers a good context.
  auto ok = RunCli("route" + StoreArgs("zones") + " --query 1,2,3,4 --routing-context zone=2");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "2\n");
}

TEST_F(CelCliTest, ContextValuesAreTypedByTheSnapshotColumns) {
  // Direct routing over a bool, a double and a uint: shard = on + 2*(x > 0.5) + 4*(n % 2).
  testing::WriteNpy(tmp_ / "v.npy", data_);
  std::string contexts;
  for (int i = 0; i < kRows; ++i) {
    contexts += json({{"on", i % 2 == 0}, {"x", (i % 4) * 0.25}, {"n", i}}).dump() + "\n";
  }
  testing::WriteText(tmp_ / "ctx.jsonl", contexts);
  auto b = Build("typed", "--input " + Path("v.npy") + " --strategy cel --num-dbs 8"
                          " --cel-expr '(on ? 1 : 0) + (x > 0.5 ? 2 : 0) + int(n % 2u) * 4'"
                          " --cel-column on=bool --cel-column x=double --cel-column n=uint"
                          " --routing-context-file " + Path("ctx.jsonl"));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::vector<std::pair<std::string, std::string>> routes = {
      {" --routing-context on=true --routing-context x=0.75 --routing-context n=3", "7\n"},
      {" --routing-context on=false --routing-context x=0.25 --routing-context n=4u", "0\n"},
      {" --routing-context on=true --routing-context x=1e0 --routing-context n=18446744073709551614", "3\n"},
  };
  for (const auto& [args, shard] : routes) {
    auto r = RunCli("route" + StoreArgs("typed") + " --query 1,2,3,4" + args);
    ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.err;
    EXPECT_EQ(r.out, shard) << args;
  }
  const std::vector<std::pair<std::string, std::vector<std::string>>> errors = {
      {" --routing-context on=yes", {"on=yes", "'yes'", "bool"}},
      {" --routing-context x=abc", {"x=abc", "'abc'", "double"}},
      {" --routing-context n=-1", {"n=-1", "'-1'", "uint"}},
      {" --routing-context n=1 --routing-context n=2", {"'n' is given twice"}},
  };
  for (const auto& [args, parts] : errors) {
    auto r = RunCli("search" + StoreArgs("typed") + " --query 1,2,3,4" + args);
    EXPECT_EQ(r.exit_code, 1) << args;
    for (const std::string& part : parts) {
      EXPECT_NE(r.err.find(part), std::string::npos) << args << "\nmissing: " << part << "\n" << r.err;
    }
  }
  // A declared variable left out is the evaluator's error, not an answer.
  auto partial = RunCli("search" + StoreArgs("typed") + " --query 1,2,3,4 --routing-context on=true");
  EXPECT_EQ(partial.exit_code, 1);
  EXPECT_TRUE(partial.out.empty()) << partial.out;
}

TEST_F(CelCliTest, BuildErrorsNameTheFlagTheFileAndTheLine) {
  testing::WriteNpy(tmp_ / "v.npy", data_);
  WriteJsonl("regions.jsonl", [](int i) { return json{{"region", Region(i)}}; });
  WriteJsonl("some.jsonl", [](int i) { return i == 2 ? std::nullopt : std::optional<json>(json{{"region", "eu"}}); });
  WriteJsonl("bad.jsonl", [](int i) { return i == 4 ? json{{"region", {1, 2}}} : json{{"region", "eu"}}; });
  WriteJsonl("none.jsonl", [](int) { return std::nullopt; });
  testing::WriteText(tmp_ / "short.jsonl", "{\"region\": \"eu\"}\n{\"region\": \"us\"}\n");
  testing::WriteText(tmp_ / "notobj.jsonl", "{\"region\": \"eu\"}\n[1]\n");
  testing::WriteText(tmp_ / "tokens.json", "{\"eu\": 0}");
  const std::string regions = "--input " + Path("regions.jsonl") + " --strategy cel --cel-expr region";
  struct Case {
    std::string args;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {regions + " --cel-column region=text --routing-values eu,us,apac", {"--cel-column", "region=text"}},
      {regions + " --cel-column region --routing-values eu,us,apac", {"--cel-column 'region' must look like NAME=TYPE"}},
      {regions + " --cel-column region=string --cel-column region=int --routing-values eu",
       {"--cel-column 'region=int'", "again"}},
      {"--input " + Path("regions.jsonl") + " --strategy cel --cel-expr 'size(region)' --cel-column region=string"
       " --routing-values 1,2,x",
       {"--routing-values", "'x'", "int"}},
      {regions + " --cel-column region=string --routing-values eu,,us", {"--routing-values", "empty token at position 2"}},
      {regions + " --routing-values eu,us", {"--cel-column NAME=TYPE"}},
      {"--input " + Path("regions.jsonl") + " --strategy cel --cel-column region=string --routing-values eu",
       {"--cel-expr"}},
      {"--input " + Path("some.jsonl") + " --strategy cel --cel-expr region --cel-column region=string"
       " --routing-values eu",
       {"some.jsonl' line 3: field 'routing_context' is missing (line 1 has one"}},
      {"--input " + Path("bad.jsonl") + " --strategy cel --cel-expr region --cel-column region=string"
       " --routing-values eu",
       {"bad.jsonl' line 5: routing_context['region'] is [1,2]"}},
      {"--input " + Path("none.jsonl") + " --strategy cel --cel-expr region --cel-column region=string"
       " --routing-values eu",
       {"--strategy cel needs routing contexts: pass --routing-context-file"}},
      {"--input " + Path("v.npy") + " --strategy cel --cel-expr region --cel-column region=string"
       " --routing-values eu --routing-context-file " + Path("short.jsonl"),
       {"--routing-context-file", "short.jsonl' has 2 rows but --input has 60 vectors"}},
      {"--input " + Path("v.npy") + " --strategy cel --cel-expr region --cel-column region=string"
       " --routing-values eu --routing-context-file " + Path("notobj.jsonl"),
       {"--routing-context-file", "notobj.jsonl' line 2: expected a JSON object of variable -> value, found [1]"}},
      {regions + " --cel-column region=string --routing-values-file " + Path("tokens.json"),
       {"--routing-values-file", "tokens.json': expected a JSON array"}},
      {regions + " --cel-column region=string --routing-values eu,us",
       {"not in routing_values"}},  // apac rows
  };
  for (const Case& tc : cases) {
    auto r = Build("store", tc.args);
    EXPECT_EQ(r.exit_code, 1) << tc.args << "\n" << r.out;
    for (const std::string& part : tc.expect) {
      EXPECT_NE(r.err.find(part), std::string::npos) << tc.args << "\nmissing: " << part << "\n" << r.err;
    }
  }
  EXPECT_FALSE(fs::exists(tmp_ / "store" / "_CURRENT"));
  // A CEL flag with another strategy would be dropped: a usage error, before any input is read.
  auto other = Build("store", "--input " + Path("v.npy") + " --strategy lsh --num-dbs 2 --cel-expr region");
  EXPECT_EQ(other.exit_code, 2) << other.err;
  EXPECT_NE(other.err.find("--cel-expr applies to --strategy cel only (got --strategy lsh)"), std::string::npos)
      << other.err;
  // The comma form and the file are exclusive: a usage error.
  auto both = Build("store", regions + " --cel-column region=string --routing-values eu --routing-values-file " +
                                 Path("tokens.json"));
  EXPECT_EQ(both.exit_code, 2) << both.err;
}

}  // namespace
}  // namespace shardvec
