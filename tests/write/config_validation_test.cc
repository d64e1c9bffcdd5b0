// CheckShardingFieldsTakeEffect and the index rules of Validate: every field set to other than its
// default takes effect under the strategy, or is refused naming it (under the caller's names).
#include "write/config_validation.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace shardvec {
namespace {

Matrix Rows(int64_t rows, int64_t cols) { return Matrix{rows, cols, std::vector<float>(rows * cols, 0.5f)}; }

WriteConfig Config(Strategy strategy) {
  WriteConfig c;
  c.store = "/tmp/unused";
  c.index.dim = 4;
  c.sharding.strategy = strategy;
  if (strategy == Strategy::kCluster) {
    c.sharding.centroids = Rows(4, 4);
  } else if (strategy == Strategy::kCel) {
    c.sharding.cel_expr = "x";
    c.sharding.cel_columns = {{"x", "int"}};
    c.sharding.num_dbs = 4;
  } else {
    c.sharding.num_dbs = 4;
  }
  return c;
}

struct Case {
  Strategy strategy;
  std::function<void(ShardingConfig&)> edit;
  std::string expect;
};

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      {Strategy::kLsh, [](ShardingConfig& s) { s.train_centroids = true; }, "train_centroids applies to CLUSTER sharding only (strategy is lsh)"},
      {Strategy::kExplicit, [](ShardingConfig& s) { s.centroids = Rows(4, 4); }, "centroids applies to CLUSTER sharding only (strategy is explicit)"},
      {Strategy::kCluster, [](ShardingConfig& s) { s.train_centroids = true; s.num_dbs = 4; }, "centroids and train_centroids exclude each other"},
      {Strategy::kCluster, [](ShardingConfig& s) { s.centroids_training_sample_size = 10; }, "centroids_training_sample_size 10 applies to CLUSTER sharding with train_centroids only"},
      {Strategy::kLsh, [](ShardingConfig& s) { s.centroids_training_sample_size = 10; }, "centroids_training_sample_size 10"},
      {Strategy::kCluster, [](ShardingConfig& s) { s.num_hash_bits = 3; }, "num_hash_bits 3 applies to LSH sharding only (strategy is cluster)"},
      {Strategy::kCel, [](ShardingConfig& s) { s.hyperplanes = Rows(3, 4); }, "hyperplanes applies to LSH sharding only (strategy is cel)"},
      {Strategy::kLsh, [](ShardingConfig& s) { s.cel_expr = "x"; }, "cel_expr applies to CEL sharding only (strategy is lsh)"},
      {Strategy::kExplicit, [](ShardingConfig& s) { s.cel_columns = {{"x", "int"}}; }, "cel_columns applies to CEL sharding only"},
      {Strategy::kCluster, [](ShardingConfig& s) { s.routing_values = std::vector<RoutingValue>{int64_t{1}}; }, "routing_values applies to CEL sharding only"},
      {Strategy::kLsh, [](ShardingConfig& s) { s.num_dbs = 257; }, "num_dbs 257 exceeds the 256 shards num_hash_bits 8 can reach"},
      {Strategy::kLsh, [](ShardingConfig& s) { s.hyperplanes = Rows(2, 4); s.num_dbs = 5; }, "num_dbs 5 exceeds the 4 shards hyperplanes 2 can reach"},
      {Strategy::kLsh, [](ShardingConfig& s) { s.num_hash_bits = 2; s.num_probes = 4; }, "num_probes 4 exceeds the 3 shards LSH can probe"},
      {Strategy::kLsh, [](ShardingConfig& s) { s.num_probes = 5; }, "num_probes 5 exceeds the 4 shards LSH can probe"},
      {Strategy::kCluster, [](ShardingConfig& s) { s.num_probes = 5; }, "num_probes 5 exceeds num_dbs 4"},
  };
  return cases;
}

TEST(ConfigValidationTest, EveryShardingFieldTheStrategyWouldNotUseIsRefusedNamingIt) {
  for (const Case& tc : Cases()) {
    WriteConfig c = Config(tc.strategy);
    ASSERT_TRUE(Validate(c).ok()) << tc.expect << ": " << Validate(c).ToString();
    tc.edit(c.sharding);
    const Status st = Validate(c);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << tc.expect;
    EXPECT_NE(st.message().find(tc.expect), std::string::npos) << st.message();
  }
}

TEST(ConfigValidationTest, TheCallersNamesAreTheOnesInTheMessage) {
  const ShardingFieldNames flags{.num_dbs = "--num-dbs", .num_probes = "--num-probes", .train_centroids = "--train-centroids"};
  WriteConfig c = Config(Strategy::kLsh);
  c.sharding.train_centroids = true;
  EXPECT_NE(CheckShardingFieldsTakeEffect(c.sharding, flags).message().find("--train-centroids applies to CLUSTER"),
            std::string::npos);
  c = Config(Strategy::kCluster);
  c.sharding.num_probes = 9;
  EXPECT_NE(CheckShardingFieldsTakeEffect(c.sharding, flags).message().find("--num-probes 9 exceeds --num-dbs 4"),
            std::string::npos);
}

TEST(ConfigValidationTest, DefaultsSpelledOutStayAccepted) {
  WriteConfig c = Config(Strategy::kCluster);
  c.sharding.num_hash_bits = 8;
  c.sharding.centroids_training_sample_size = 100000;
  c.sharding.num_probes = 4;
  EXPECT_TRUE(Validate(c).ok()) << Validate(c).ToString();
  c = Config(Strategy::kLsh);
  c.sharding.num_dbs = 256;
  c.sharding.num_probes = 9;
  EXPECT_TRUE(Validate(c).ok()) << Validate(c).ToString();
  c.index.index_type = "flat";
  EXPECT_TRUE(Validate(c).ok()) << Validate(c).ToString();
}

TEST(ConfigValidationTest, IndexSettingsSqliteVecCannotBuildAreRefused) {
  WriteConfig c = Config(Strategy::kLsh);
  c.index.index_type = "ivf_pq";
  EXPECT_NE(Validate(c).message().find("index_config.index_type 'ivf_pq' is not supported"), std::string::npos);
  c = Config(Strategy::kLsh);
  c.index.quantization = "fp16";
  EXPECT_NE(Validate(c).message().find("index_config.quantization 'fp16' is not supported"), std::string::npos);
}

TEST(ConfigValidationTest, QuantizationIsInt8NoneOrUnset) {
  for (const char* ok : {"int8", "none"}) {
    WriteConfig c = Config(Strategy::kLsh);
    c.index.quantization = ok;
    EXPECT_TRUE(Validate(c).ok()) << ok;
  }
  EXPECT_FALSE(WritesInt8Codes(std::nullopt));
  EXPECT_FALSE(WritesInt8Codes("none"));
  EXPECT_TRUE(WritesInt8Codes("int8"));
  for (const char* bad : {"INT8", "int4", ""}) {
    WriteConfig c = Config(Strategy::kLsh);
    c.index.quantization = bad;
    const Status st = Validate(c);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(st.message().find(fmt::format("index_config.quantization '{}' is not supported", bad)), std::string::npos)
        << st.message();
  }
}

TEST(ConfigValidationTest, TheLayoutIsCheckedAndANonDefaultOneAccepted) {
  WriteConfig c = Config(Strategy::kLsh);
  c.shard_prefix = "blobs";
  c.db_path_template = "shard-{db_id:03d}";
  c.run_registry_prefix = "registry";
  EXPECT_TRUE(Validate(c).ok()) << Validate(c).ToString();
  c.db_path_template = "{db_id:,}";
  EXPECT_NE(Validate(c).message().find("db_path_template '{db_id:,}' is not supported"), std::string::npos)
      << Validate(c).message();
  c = Config(Strategy::kLsh);
  c.run_registry_prefix = "..";
  EXPECT_NE(Validate(c).message().find("run_registry_prefix must not contain '..'"), std::string::npos);
  EXPECT_NE(ValidateLayout("shards", "db", "runs", {.db_path_template = "--db-path-template"})
                .message()
                .find("--db-path-template 'db' is not supported"),
            std::string::npos);
}

}  // namespace
}  // namespace shardvec
