// End-to-end tests of `shardvec build`: the binary runs as a child process, and everything it wrote
// is read back with plain SQLite + vec0 and plain JSON parsing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "format/manifest.h"
#include "shardvec/object_store.h"
#include "support/id_index_check.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::QueryRows;
using testing::RunCli;
using testing::ShellQuote;

std::set<std::string> Columns(sqlite3* db, const std::string& table) {
  std::set<std::string> cols;
  for (auto& row : QueryRows(db, "PRAGMA table_info(" + table + ")")) cols.insert(row[1] + " " + row[2]);
  return cols;
}

class BuildCliTest : public ::testing::Test {
 protected:
  std::string Store() const { return (tmp_ / "store").string(); }
  std::string Base() const {
    return "build --quiet --store " + ShellQuote(Store()) + " --local-root " + ShellQuote((tmp_ / "lr").string());
  }
  testing::TempDir tmp_;
};

TEST_F(BuildCliTest, SnapshotHasExactlyTheReferenceLayout) {
  Matrix data = testing::ClusteredMatrix(240, 16, 4, 11);
  testing::WriteNpy(tmp_ / "v.npy", data);
  std::string ids, payloads;
  for (int i = 0; i < 240; ++i) {
    ids += (i % 2 ? "doc-" + std::to_string(i) : std::to_string(1000 + i)) + "\n";
    payloads += (i % 5 ? "null" : "{\"i\": " + std::to_string(i) + "}") + std::string("\n");
  }
  testing::WriteText(tmp_ / "ids.txt", ids);
  testing::WriteText(tmp_ / "p.jsonl", payloads);
  auto r = RunCli(Base() + " --input " + ShellQuote((tmp_ / "v.npy").string()) +
                  " --metric cosine --strategy cluster --num-dbs 4 --train-centroids --num-probes 2"
                  " --ids " + ShellQuote((tmp_ / "ids.txt").string()) +
                  " --payloads " + ShellQuote((tmp_ / "p.jsonl").string()) + " --run-id R1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out);
  EXPECT_EQ(out["run_id"], "R1");
  EXPECT_EQ(out["num_dbs"], 4);
  EXPECT_EQ(out["total_vectors"], 240);
  EXPECT_TRUE(out["elapsed_ms"].is_number());
  ASSERT_TRUE(out["shards"].is_array());
  for (auto& s : out["shards"]) {
    EXPECT_EQ(std::set<std::string>({"db_id", "row_count", "db_bytes"}).size(), s.size());
  }

  // Exactly the layout's keys, and no staging leftovers.
  const fs::path root = tmp_ / "store";
  auto keys = testing::ListFiles(root);
  const std::regex ts(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)");
  std::string manifest_key;
  int shard_files = 0, runs = 0;
  for (const auto& k : keys) {
    if (k == "_CURRENT" || k == "vector_meta/run_id=R1/centroids.npy" || k == "vector_meta/run_id=R1/id_index.bin" ||
        k == "shards/run_id=R1/_RUN") {
      continue;
    }
    if (std::regex_match(k, std::regex(R"(manifests/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z_run_id=R1/manifest)"))) {
      manifest_key = k;
    } else if (std::regex_match(k, std::regex(R"(shards/run_id=R1/db=0000[0-3]/attempt=00/shard\.db)"))) {
      ++shard_files;
    } else if (std::regex_match(k, std::regex(R"(runs/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z_run_id=R1_[0-9a-f]{32}/run\.yaml)"))) {
      ++runs;
    } else {
      ADD_FAILURE() << "unexpected key " << k;
    }
  }
  EXPECT_FALSE(manifest_key.empty());
  EXPECT_EQ(shard_files, static_cast<int>(out["shards"].size()));
  EXPECT_EQ(runs, 1);

  // _CURRENT: compact, sorted, exactly five keys.
  const std::string current_text = testing::ReadText(root / "_CURRENT");
  json current = json::parse(current_text);
  EXPECT_EQ(current.dump(), current_text);
  EXPECT_EQ(current.size(), 5u);
  EXPECT_EQ(current["format_version"], 1);
  EXPECT_EQ(current["manifest_content_type"], "application/x-sqlite3");
  EXPECT_EQ(current["manifest_ref"], "file://" + (root / manifest_key).string());
  EXPECT_EQ(current["run_id"], "R1");
  EXPECT_TRUE(std::regex_match(current["updated_at"].get<std::string>(), ts));

  // The manifest, read with plain SQLite.
  sqlite3* mdb = testing::OpenWithVec0(root / manifest_key);
  EXPECT_EQ(Columns(mdb, "build_meta"),
            (std::set<std::string>{"run_id TEXT", "created_at TEXT", "num_dbs INTEGER", "s3_prefix TEXT",
                                   "key_col TEXT", "sharding TEXT", "db_path_template TEXT", "shard_prefix TEXT",
                                   "format_version INTEGER", "key_encoding TEXT", "custom TEXT"}));
  EXPECT_EQ(Columns(mdb, "shards"),
            (std::set<std::string>{"db_id INTEGER", "db_url TEXT", "attempt INTEGER", "row_count INTEGER",
                                   "db_bytes INTEGER", "min_key TEXT", "max_key TEXT", "checkpoint_id TEXT",
                                   "writer_info TEXT"}));
  auto meta = QueryRows(mdb, "SELECT run_id, num_dbs, s3_prefix, key_col, format_version, key_encoding, custom, created_at FROM build_meta");
  ASSERT_EQ(meta.size(), 1u);
  EXPECT_EQ(meta[0][0], "R1");
  EXPECT_EQ(meta[0][1], "4");
  EXPECT_EQ(meta[0][2], "file://" + root.string());
  EXPECT_EQ(meta[0][3], "_vector_id");
  EXPECT_EQ(meta[0][4], "4");
  EXPECT_EQ(meta[0][5], "raw");
  EXPECT_TRUE(std::regex_match(meta[0][7], ts));
  json custom = json::parse(meta[0][6]);
  std::set<std::string> vector_keys;
  for (auto& [k, v] : custom["vector"].items()) vector_keys.insert(k);
  EXPECT_EQ(vector_keys, (std::set<std::string>{"dim", "metric", "index_type", "quantization", "total_vectors",
                                                "sharding_strategy", "num_probes", "centroids_ref"}));
  EXPECT_EQ(custom["vector"]["dim"], 16);
  EXPECT_EQ(custom["vector"]["metric"], "cosine");
  EXPECT_EQ(custom["vector"]["num_probes"], 2);
  EXPECT_EQ(custom["vector"]["centroids_ref"], "file://" + (root / "vector_meta/run_id=R1/centroids.npy").string());
  EXPECT_EQ(custom["shardvec"]["format"], 1);
  EXPECT_EQ(custom["shardvec"]["page_size"], 65536);
  // The id index an update reads: every row's id hash and shard, as the shards hold them.
  EXPECT_EQ(custom["shardvec"]["id_index"]["ref"],
            "file://" + (root / "vector_meta/run_id=R1/id_index.bin").string());
  {
    auto store = OpenStore(root.string());
    ASSERT_TRUE(store.ok());
    auto manifest = ParseManifest(testing::ReadText(root / manifest_key));
    ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
    EXPECT_EQ(testing::ExpectIdIndexMatchesShards(**store, *manifest, tmp_ / "scratch"), 240);
  }

  auto shard_rows = QueryRows(mdb, "SELECT db_id, db_url, attempt, row_count, db_bytes, checkpoint_id FROM shards ORDER BY db_id");
  int64_t total = 0;
  for (auto& row : shard_rows) {
    const fs::path file = fs::path(row[1].substr(7)) / "shard.db";
    ASSERT_TRUE(fs::exists(file)) << file;
    EXPECT_EQ(row[2], "0");
    EXPECT_EQ(std::stoll(row[4]), static_cast<int64_t>(fs::file_size(file)));
    EXPECT_TRUE(std::regex_match(row[5], std::regex("[0-9a-f]{32}")));
    const std::string digest = custom["shardvec"]["shard_digests"][row[0]];
    EXPECT_TRUE(std::regex_match(digest, std::regex("xxh3:[0-9a-f]{16}")));
    total += std::stoll(row[3]);

    // The shard answers its own vectors, through vec0 loaded by plain SQLite.
    sqlite3* sdb = testing::OpenWithVec0(file);
    EXPECT_EQ(QueryRows(sdb, "SELECT count(*) FROM vec_index")[0][0], row[3]);
    auto first = QueryRows(sdb, "SELECT vec_to_json(embedding) FROM vec_index WHERE rowid = 0");
    auto knn = QueryRows(sdb, "SELECT rowid, distance FROM vec_index WHERE embedding MATCH '" + first[0][0] + "' AND k = 1");
    EXPECT_EQ(knn[0][0], "0");
    EXPECT_LT(std::stod(knn[0][1]), 1e-5);
    sqlite3_close(sdb);
  }
  EXPECT_EQ(total, 240);
  sqlite3_close(mdb);
}

TEST_F(BuildCliTest, DigestsInTheManifestMatchTheShardBytes) {
  testing::WriteNpy(tmp_ / "v.npy", testing::RandomMatrix(100, 8, 5));
  auto r = RunCli(Base() + " --input " + ShellQuote((tmp_ / "v.npy").string()) +
                  " --metric l2 --strategy lsh --num-dbs 3 --num-hash-bits 3 --run-id D");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json current = json::parse(testing::ReadText(tmp_ / "store/_CURRENT"));
  sqlite3* mdb = testing::OpenWithVec0(current["manifest_ref"].get<std::string>().substr(7));
  json custom = json::parse(QueryRows(mdb, "SELECT custom FROM build_meta")[0][0]);
  auto shards = QueryRows(mdb, "SELECT db_id, db_url FROM shards");
  sqlite3_close(mdb);
  ASSERT_FALSE(shards.empty());
  EXPECT_EQ(custom["vector"]["num_hash_bits"], 3);
  for (auto& row : shards) {
    const std::string file = row[1].substr(7) + "/shard.db";
    // Recomputed by an independent implementation (the python xxhash package in the project venv).
    auto py = testing::RunCommand(ShellQuote(SHARDVEC_SOURCE_DIR "/.venv/bin/python") +
                                  " -c 'import sys,xxhash;print(xxhash.xxh3_64_hexdigest(open(sys.argv[1],\"rb\").read()))' " +
                                  ShellQuote(file));
    ASSERT_EQ(py.exit_code, 0) << py.err;
    EXPECT_EQ(custom["shardvec"]["shard_digests"][row[0]].get<std::string>(), "xxh3:" + py.out.substr(0, 16));
  }
}

// --quantization int8: the manifest records it and every shard carries the code tables; an unknown
// value is a usage error naming the flag and the value, before any input is read.
TEST_F(BuildCliTest, QuantizationInt8WritesCodesAndAnUnknownValueIsAUsageError) {
  testing::WriteNpy(tmp_ / "v.npy", testing::RandomMatrix(300, 8, 5));
  auto bad = RunCli(Base() + " --input missing.npy --metric l2 --strategy lsh --num-dbs 2 --quantization fp16");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--quantization 'fp16' is not supported"), std::string::npos) << bad.err;
  auto r = RunCli(Base() + " --input " + ShellQuote((tmp_ / "v.npy").string()) +
                  " --metric l2 --strategy lsh --num-dbs 2 --quantization int8 --run-id Q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json current = json::parse(testing::ReadText(tmp_ / "store/_CURRENT"));
  sqlite3* mdb = testing::OpenWithVec0(current["manifest_ref"].get<std::string>().substr(7));
  json custom = json::parse(QueryRows(mdb, "SELECT custom FROM build_meta")[0][0]);
  auto shards = QueryRows(mdb, "SELECT db_url, row_count FROM shards");
  sqlite3_close(mdb);
  EXPECT_EQ(custom["shardvec"]["quantization"], "int8");
  EXPECT_EQ(custom["vector"]["quantization"], "int8");
  ASSERT_FALSE(shards.empty());
  for (auto& row : shards) {
    sqlite3* sdb = testing::OpenWithVec0(row[0].substr(7) + "/shard.db");
    EXPECT_EQ(QueryRows(sdb, "SELECT rows FROM shardvec_sq8_params")[0][0], row[1]);
    sqlite3_close(sdb);
  }
}

TEST_F(BuildCliTest, EveryRejectedInputExitsOneNamingTheFieldAndLeavesCurrentAlone) {
  testing::WriteNpy(tmp_ / "good.npy", testing::RandomMatrix(20, 4, 1));
  auto ok = RunCli(Base() + " --input " + ShellQuote((tmp_ / "good.npy").string()) + " --metric l2 --strategy lsh --num-dbs 2");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  const std::string before = testing::ReadText(tmp_ / "store/_CURRENT");

  Matrix nan_data = testing::RandomMatrix(20, 4, 2);
  nan_data.data[4 * 13 + 1] = std::nanf("");
  testing::WriteNpy(tmp_ / "nan.npy", nan_data);
  Matrix inf_data = testing::RandomMatrix(20, 4, 2);
  inf_data.data[4 * 3] = INFINITY;
  testing::WriteNpy(tmp_ / "inf.npy", inf_data);
  testing::WriteNpy(tmp_ / "c3.npy", testing::RandomMatrix(2, 3, 3));
  testing::WriteText(tmp_ / "ragged.jsonl", "{\"id\": 1, \"vector\": [1, 2, 3, 4]}\n{\"id\": 2, \"vector\": [1, 2, 3]}\n");
  Matrix shard_ids{20, 1, std::vector<float>(20, 1.0f)};
  shard_ids.data[6] = 5.0f;
  testing::WriteNpy(tmp_ / "sid.npy", shard_ids);
  const std::string good = " --input " + ShellQuote((tmp_ / "good.npy").string());

  // Exit 2 for a flag value the command line alone shows is wrong (a usage error), else 1.
  struct Case { std::string args; std::string expect; int exit_code = 1; };
  std::vector<Case> cases = {
      {good + " --metric dot_product --strategy lsh --num-dbs 2", "--metric 'dot_product' is not supported", 2},
      {good + " --metric hamming --strategy lsh --num-dbs 2", "--metric 'hamming' is not supported", 2},
      {good + " --metric l2 --strategy lsh --num-dbs 0", "num_dbs must be > 0, got 0"},
      {good + " --metric l2 --strategy lsh --num-dbs -4", "num_dbs must be > 0, got -4"},
      {good + " --metric l2 --strategy cluster --num-dbs 2", "CLUSTER sharding requires either centroids or train_centroids"},
      {good + " --metric l2 --strategy cluster --centroids " + ShellQuote((tmp_ / "c3.npy").string()), "centroids has 3 columns but index_config.dim is 4"},
      {good + " --metric l2 --strategy nearest --num-dbs 2", "--strategy 'nearest' is not supported", 2},
      {" --input " + ShellQuote((tmp_ / "nan.npy").string()) + " --metric l2 --strategy lsh --num-dbs 2", "row 13): vector[1] is nan"},
      {" --input " + ShellQuote((tmp_ / "inf.npy").string()) + " --metric l2 --strategy lsh --num-dbs 2", "row 3): vector[0] is inf"},
      {" --input " + ShellQuote((tmp_ / "missing.npy").string()) + " --metric l2 --strategy lsh --num-dbs 2", "missing.npy"},
      {" --input " + ShellQuote((tmp_ / "ragged.jsonl").string()) + " --metric l2 --strategy lsh --num-dbs 2", "line 2"},
      {good + " --metric l2 --strategy explicit --num-dbs 2 --shard-ids " + ShellQuote((tmp_ / "sid.npy").string()), "shard_id 5 out of range [0, 2)"},
      {good + " --metric l2 --strategy explicit --num-dbs 2", "--strategy explicit needs shard ids"},
  };
  for (const auto& tc : cases) {
    auto r = RunCli(Base() + tc.args);
    EXPECT_EQ(r.exit_code, tc.exit_code) << tc.args << "\n" << r.err;
    EXPECT_NE(r.err.find(tc.expect), std::string::npos) << tc.args << "\nstderr: " << r.err;
    EXPECT_EQ(testing::ReadText(tmp_ / "store/_CURRENT"), before) << tc.args;
  }
}

TEST_F(BuildCliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(RunCli("build --input x.npy --metric l2 --strategy lsh").exit_code, 2);
  EXPECT_EQ(RunCli(Base() + " --input x.npy --metric l2 --strategy lsh --bogus").exit_code, 2);
  EXPECT_EQ(RunCli(Base() + " --input x.npy --metric l2 --strategy lsh --num-dbs three").exit_code, 2);
  EXPECT_EQ(RunCli("").exit_code, 2);
  EXPECT_EQ(RunCli("--help").exit_code, 0);
}

// Three inputs of three dims into one store: each build changes the schema on purpose.
TEST_F(BuildCliTest, JsonlFvecsAndIdxInputsBuild) {
  testing::WriteText(tmp_ / "r.jsonl",
                     "{\"id\": \"a\", \"vector\": [1, 0, 0], \"payload\": {\"x\": 1}, \"shard_id\": 1}\n"
                     "{\"id\": 7, \"vector\": [0, 1, 0], \"shard_id\": 0}\n");
  auto r = RunCli(Base() + " --input " + ShellQuote((tmp_ / "r.jsonl").string()) + " --metric cosine --strategy explicit --num-dbs 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["total_vectors"], 2);

  std::ofstream f(tmp_ / "v.fvecs", std::ios::binary);
  Matrix m = testing::RandomMatrix(50, 6, 8);
  for (int64_t i = 0; i < m.rows; ++i) {
    const int32_t d = 6;
    f.write(reinterpret_cast<const char*>(&d), 4);
    f.write(reinterpret_cast<const char*>(m.row(i)), 24);
  }
  f.close();
  r = RunCli(Base() + " --input " + ShellQuote((tmp_ / "v.fvecs").string()) + " --metric l2 --strategy lsh --num-dbs 2 --json --allow-schema-change");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["total_vectors"], 50);

  const fs::path idx = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  if (!fs::exists(idx)) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  r = RunCli(Base() + " --input " + ShellQuote(idx.string()) + " --metric l2 --strategy cluster --num-dbs 4 --train-centroids --sample-size 2000 --json --allow-schema-change");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out);
  EXPECT_EQ(out["total_vectors"], 10000);
  json current = json::parse(testing::ReadText(tmp_ / "store/_CURRENT"));
  sqlite3* mdb = testing::OpenWithVec0(current["manifest_ref"].get<std::string>().substr(7));
  EXPECT_EQ(json::parse(QueryRows(mdb, "SELECT custom FROM build_meta")[0][0])["vector"]["dim"], 784);
  sqlite3_close(mdb);
}

// A second process polling _CURRENT while builds publish sees a whole pointer every time, and the
// manifest it names always exists.
TEST_F(BuildCliTest, ConcurrentReaderSeesOldOrNewPointerWhole) {
  testing::WriteNpy(tmp_ / "v.npy", testing::RandomMatrix(300, 8, 3));
  const std::string build = Base() + " --input " + ShellQuote((tmp_ / "v.npy").string()) + " --metric l2 --strategy lsh --num-dbs 3";
  ASSERT_EQ(RunCli(build).exit_code, 0);
  const fs::path current_path = tmp_ / "store/_CURRENT";
  const fs::path stop_file = tmp_ / "stop";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int reads = 0;
    while (!fs::exists(stop_file) || reads < 100) {
      std::ifstream in(current_path, std::ios::binary);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      json j = json::parse(text, nullptr, false);
      if (j.is_discarded() || !j.contains("manifest_ref")) _exit(10);
      if (!fs::exists(j["manifest_ref"].get<std::string>().substr(7))) _exit(11);
      ++reads;
    }
    _exit(reads >= 100 ? 0 : 12);
  }
  for (int i = 0; i < 4; ++i) EXPECT_EQ(RunCli(build).exit_code, 0);
  testing::WriteText(stop_file, "stop");
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: torn pointer, 11: pointer to a missing manifest";
}

}  // namespace
}  // namespace shardvec
