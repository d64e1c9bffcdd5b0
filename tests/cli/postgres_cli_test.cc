// `--manifest-store postgresql://…`: shards in a folder store, manifests and the pointer in the
// PostgreSQL test server (scripts/pg_test_server.py), through build, search, info, shards, history,
// rollback and cleanup run as child processes.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "shardvec/manifest_store.h"
#include "store/postgres/pg_connection.h"
#include "support/pg_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunCli;
using testing::ShellQuote;

// The test server's DSN with the default tables of a fresh schema (search_path), so the CLI's
// default table names never meet another test's.
std::string SchemaDsn(const std::string& dsn, const std::string& schema) {
  auto conn = PgConnection::Connect(dsn, "test");
  EXPECT_TRUE(conn.ok()) << conn.status().ToString();
  if (conn.ok()) EXPECT_TRUE((*conn)->Run("CREATE SCHEMA " + schema, {}, "create schema").ok());
  return dsn + (dsn.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
}

TEST(PostgresCliTest, EveryCommandKeepsManifestsInPostgresAndShardsInTheStore) {
  SHARDVEC_REQUIRE_PG_DSN(base_dsn);
  testing::TempDir tmp;
  const std::string dsn = SchemaDsn(base_dsn, testing::UniquePgTable("cli"));
  const std::string store = (tmp.path() / "store").string();
  testing::WriteNpy(tmp.path() / "v.npy", testing::RandomMatrix(60, 4, 11));
  const std::string flags = " --store " + ShellQuote(store) + " --manifest-store " + ShellQuote(dsn);
  for (const char* run : {"R1", "R2"}) {
    auto built = RunCli("build --quiet --json" + flags + " --local-root " + ShellQuote((tmp.path() / "lr").string()) +
                        " --input " + ShellQuote((tmp.path() / "v.npy").string()) +
                        " --metric l2 --strategy lsh --num-dbs 2 --run-id " + run);
    ASSERT_EQ(built.exit_code, 0) << built.err;
    EXPECT_EQ(json::parse(built.out)["manifest_ref"], run);  // the PostgreSQL store's ref: the run id
  }
  // The shards are in the folder; no manifest and no _CURRENT are.
  EXPECT_TRUE(fs::exists(fs::path(store) / "shards"));
  EXPECT_FALSE(fs::exists(fs::path(store) / "_CURRENT"));
  EXPECT_FALSE(fs::exists(fs::path(store) / "manifests"));
  // Without the flag the folder has no snapshot: the flag took effect.
  EXPECT_NE(RunCli("info --store " + ShellQuote(store)).exit_code, 0);

  auto info = RunCli("info --json" + flags);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("\"R2\""), std::string::npos) << info.out;
  auto shards = RunCli("shards --json" + flags);
  ASSERT_EQ(shards.exit_code, 0) << shards.err;
  auto search = RunCli("search --json --top-k 3 --query 0.1,0.2,0.3,0.4" + flags);
  ASSERT_EQ(search.exit_code, 0) << search.err;
  EXPECT_NE(search.out.find("\"id\""), std::string::npos) << search.out;

  auto history = RunCli("history --json" + flags);
  ASSERT_EQ(history.exit_code, 0) << history.err;
  const json h = json::parse(history.out);
  ASSERT_EQ(h["manifests"].size(), 2u);
  EXPECT_EQ(h["manifests"][0]["run_id"], "R2");
  EXPECT_EQ(h["manifests"][0]["current"], true);

  auto rolled = RunCli("rollback --json --offset 1" + flags);
  ASSERT_EQ(rolled.exit_code, 0) << rolled.err;
  auto manifests = OpenPostgresManifestStore(dsn, {});
  ASSERT_TRUE(manifests.ok()) << manifests.status().ToString();
  auto current = (*manifests)->LoadCurrent();
  ASSERT_TRUE(current.ok() && *current);
  EXPECT_EQ((*current)->ref, "R1");

  auto cleanup = RunCli("cleanup --json --dry-run --keep-last 1" + flags);
  EXPECT_EQ(cleanup.exit_code, 0) << cleanup.err;

  // A DSN that is not one, and a server that is not there: clear errors naming the flag, no password.
  auto bad = RunCli("info --store " + ShellQuote(store) + " --manifest-store 'postgresql://u:sekrit-1@h/d?bogus_option=1'");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--manifest-store"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.err.find("sekrit-1"), std::string::npos) << bad.err;
  auto other = RunCli("history --store " + ShellQuote(store) + " --manifest-store 'mysql://x'");
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("--manifest-store"), std::string::npos) << other.err;
}

}  // namespace
}  // namespace shardvec
