// The PostgreSQL manifest store against a real server (scripts/pg_test_server.py): publish, load,
// list, set_current with compare-and-swap, the publish guard, racing publishers, hostile input.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <map>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "common/time_util.h"
#include "shardvec/manifest_store.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_manifest_sql.h"
#include "support/pg_test_env.h"

namespace shardvec {
namespace {

using testing::UniquePgTable;

Manifest MakeManifest(const std::string& run_id, SystemTime created = NowUtc()) {
  Manifest m;
  m.run_id = run_id;
  m.created_at = FormatTimestamp(created);
  m.num_dbs = 3;
  m.s3_prefix = "s3://bucket/prefix";
  m.custom = {{"vector", {{"dim", 8}, {"metric", "cosine"}, {"total_vectors", 30}, {"quantization", nullptr}}},
              {"user", {{"note", "ünïcode 漢"}, {"ratio", 0.1}}}};
  ManifestShard a;
  a.db_id = 0;
  a.db_url = "s3://bucket/prefix/shards/run_id=" + run_id + "/db=00000/attempt=00";
  a.row_count = 10;
  a.db_bytes = 4096;
  a.checkpoint_id = "0123456789abcdef";
  a.writer_info = {{"attempt", 0}, {"duration_ms", 12}, {"stage_id", 3}, {"task_attempt_id", 7}};
  ManifestShard c;
  c.db_id = 2;
  c.row_count = 20;
  c.db_bytes = 8192;
  m.shards = {a, c};
  return m;
}

std::unique_ptr<ManifestStore> Open(const std::string& dsn, const std::string& table,
                                    bool ensure_table = true) {
  PostgresManifestStoreOptions o;
  o.table_name = table;
  o.pointer_table_name = table + "_pointer";
  o.ensure_table = ensure_table;
  auto store = OpenPostgresManifestStore(dsn, o);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(*store) : nullptr;
}

PublishGuard StartedAt(SystemTime t, PublishPolicy policy = PublishPolicy::kRejectIfNewer) {
  PublishGuard g;
  g.run_started = t;
  g.policy = policy;
  return g;
}

// Rows of a query on a connection of the test's own.
std::vector<PgRow> Query(const std::string& dsn, const std::string& sql) {
  auto conn = PgConnection::Connect(dsn, "test");
  EXPECT_TRUE(conn.ok()) << conn.status().ToString();
  if (!conn.ok()) return {};
  auto rows = (*conn)->Exec(sql, {}, "test query");
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  return rows.ok() ? *rows : std::vector<PgRow>{};
}

TEST(PostgresManifestStoreTest, PublishLoadAndListRoundTrip) {
  SHARDVEC_REQUIRE_PG_DSN(dsn);
  const std::string table = UniquePgTable("roundtrip");
  auto store = Open(dsn, table);
  ASSERT_NE(store, nullptr);
  auto none = store->LoadCurrent();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(*none);

  const Manifest m = MakeManifest("run-a");
  auto ref = store->Publish(m, StartedAt(NowUtc()));
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(ref->ref, "run-a");  // the reference's refs: the run id
  EXPECT_EQ(ref->run_id, "run-a");
  EXPECT_TRUE(ParseTimestamp(ref->published_at)) << ref->published_at;

  auto current = store->LoadCurrent();
  ASSERT_TRUE(current.ok() && *current) << current.status().ToString();
  EXPECT_EQ((*current)->ref, "run-a");
  EXPECT_EQ((*current)->published_at, ref->published_at);

  auto loaded = store->LoadManifest("run-a");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->run_id, m.run_id);
  EXPECT_EQ(loaded->created_at, m.created_at);
  EXPECT_EQ(loaded->num_dbs, 3);
  EXPECT_EQ(loaded->s3_prefix, m.s3_prefix);
  EXPECT_EQ(loaded->key_col, "_vector_id");
  EXPECT_EQ(loaded->sharding, m.sharding);
  EXPECT_EQ(loaded->custom, m.custom);
  EXPECT_EQ(loaded->db_path_template, m.db_path_template);
  EXPECT_EQ(loaded->shard_prefix, m.shard_prefix);
  EXPECT_EQ(loaded->key_encoding, "raw");
  EXPECT_EQ(loaded->format_version, 4);
  ASSERT_EQ(loaded->shards.size(), 2u);
  EXPECT_EQ(loaded->shards[0].db_url, m.shards[0].db_url);
  EXPECT_EQ(loaded->shards[0].checkpoint_id, m.shards[0].checkpoint_id);
  EXPECT_EQ(loaded->shards[0].writer_info, m.shards[0].writer_info);
  EXPECT_EQ(loaded->shards[1].db_id, 2);
  EXPECT_FALSE(loaded->shards[1].db_url);
  EXPECT_FALSE(loaded->shards[1].checkpoint_id);
  EXPECT_EQ(loaded->shards[1].row_count, 20);
  EXPECT_EQ(loaded->shards[1].db_bytes, 8192);

  // The rows on the server: the reference's layout, one pointer row, JSON as jsonb.
  auto rows = Query(dsn, fmt::format("SELECT b.custom->'vector'->>'dim', (SELECT count(*) FROM {0}_shards), "
                                     "(SELECT count(*) FROM {0}_pointer), (SELECT manifest_ref FROM {0}_pointer) "
                                     "FROM {0}_builds b", table));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], "8");
  EXPECT_EQ(rows[0][1], "2");
  EXPECT_EQ(rows[0][2], "1");
  EXPECT_EQ(rows[0][3], "run-a");

  auto missing = store->LoadManifest("no-such-run");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
  EXPECT_NE(missing.status().message().find("no-such-run"), std::string::npos);

  const SystemTime later = NowUtc() + std::chrono::seconds(1);
  ASSERT_TRUE(store->Publish(MakeManifest("run-b", later), StartedAt(later)).ok());
  auto list = store->ListManifests(0);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].ref, "run-b");  // newest first
  EXPECT_EQ((*list)[0].published_at, FormatTimestamp(later));
  EXPECT_EQ((*list)[1].ref, "run-a");
  auto one = store->ListManifests(1);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].ref, "run-b");
  EXPECT_EQ(store->ListManifests(-1).status().code(), StatusCode::kInvalidArgument);
}

TEST(PostgresManifestStoreTest, PublishNeverOverwritesAManifest) {
  SHARDVEC_REQUIRE_PG_DSN(dsn);
  auto store = Open(dsn, UniquePgTable("overwrite"));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Publish(MakeManifest("same"), StartedAt(NowUtc())).ok());
  Manifest again = MakeManifest("same");
  again.num_dbs = 5;
  auto second = store->Publish(again, StartedAt(NowUtc(), PublishPolicy::kLastWriterWins));
  EXPECT_EQ(second.status().code(), StatusCode::kAlreadyExists) << second.status().ToString();
  EXPECT_EQ(second.status().kind(), ErrorKind::kManifestExists);
  auto loaded = store->LoadManifest("same");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->num_dbs, 3);  // the first one, untouched
}

TEST(PostgresManifestStoreTest, RejectIfNewerKeepsTheManifestListedAndThePointerWhereItWas) {
  SHARDVEC_REQUIRE_PG_DSN(dsn);
  auto store = Open(dsn, UniquePgTable("guard"));
  ASSERT_NE(store, nullptr);
  const SystemTime old_start = NowUtc() - std::chrono::seconds(60);
  ASSERT_TRUE(store->Publish(MakeManifest("newer"), StartedAt(NowUtc())).ok());

  auto lost = store->Publish(MakeManifest("older-run"), StartedAt(old_start));
  EXPECT_EQ(lost.status().code(), StatusCode::kConflict) << lost.status().ToString();
  EXPECT_EQ(lost.status().kind(), ErrorKind::kPublishConflict);
  EXPECT_EQ(lost.status().subject(), "older-run");
  EXPECT_NE(lost.status().message().find("newer"), std::string::npos) << lost.status().message();
  auto current = store->LoadCurrent();
  ASSERT_TRUE(current.ok() && *current);
  EXPECT_EQ((*current)->ref, "newer");
  auto list = store->ListManifests(0);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);  // the loser stays in history
  EXPECT_TRUE(store->LoadManifest("older-run").ok());

  // A rollback makes it current; the last-writer-wins policy publishes over a newer pointer.
  ASSERT_TRUE(store->SetCurrent("older-run", std::nullopt).ok());
  EXPECT_EQ((*store->LoadCurrent())->ref, "older-run");
  ASSERT_TRUE(store->Publish(MakeManifest("lww"), StartedAt(old_start, PublishPolicy::kLastWriterWins)).ok());
  EXPECT_EQ((*store->LoadCurrent())->ref, "lww");
}

TEST(PostgresManifestStoreTest, SetCurrentIsACompareAndSwap) {
  SHARDVEC_REQUIRE_PG_DSN(dsn);
  auto store = Open(dsn, UniquePgTable("cas"));
  ASSERT_NE(store, nullptr);
  // No pointer yet: both refs exist as builds only after publishes, so publish under LWW.
  ASSERT_TRUE(store->Publish(MakeManifest("one"), StartedAt(NowUtc())).ok());
  ASSERT_TRUE(store->Publish(MakeManifest("two"), StartedAt(NowUtc())).ok());

  EXPECT_EQ(store->SetCurrent("nope", std::nullopt).code(), StatusCode::kNotFound);
  const ManifestRef stale{"one", "one", ""};
  Status conflict = store->SetCurrent("one", stale);  // current is "two"
  EXPECT_EQ(conflict.code(), StatusCode::kConflict) << conflict.ToString();
  EXPECT_NE(conflict.message().find("'two'"), std::string::npos) << conflict.message();
  EXPECT_EQ((*store->LoadCurrent())->ref, "two");

  const ManifestRef fresh{"two", "two", ""};
  ASSERT_TRUE(store->SetCurrent("one", fresh).ok());
  auto current = store->LoadCurrent();
  EXPECT_EQ((*current)->ref, "one");
  // Each move appends a row strictly newer than the last, so "newest" is never ambiguous.
  const auto before = (*current)->published_at;
  ASSERT_TRUE(store->SetCurrent("two", std::nullopt).ok());
  EXPECT_GT((*store->LoadCurrent())->published_at, before);
}

TEST(PostgresManifestStoreTest, SetCurrentExpectingNoPointerFailsOnceOneExists) {
  SHARDVEC_REQUIRE_PG_DSN(dsn);
  auto store = Open(dsn, UniquePgTable("casempty"));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Publish(MakeManifest("x"), StartedAt(NowUtc())).ok());
  Status s = store->SetCurrent("x", ManifestRef{"", "", ""});
  EXPECT_EQ(s.code(), StatusCode::kConflict) << s.ToString();
}

// Several threads, each with its own connection, publish in the same instant with the same run
// start: per race exactly one moves the pointer, the others get PublishConflictError, and every
// manifest is listed.
TEST(PostgresManifestStoreTest, RacingPublishersExactlyOneWinsPerRace) {
  SHARDVEC_REQUIRE_PG_DSN(dsn);
  const std::string table = UniquePgTable("race");
  constexpr int kThreads = 6;
  constexpr int kRaces = 5;
  std::vector<std::unique_ptr<ManifestStore>> stores;
  for (int i = 0; i < kThreads; ++i) {
    stores.push_back(Open(dsn, table));
    ASSERT_NE(stores.back(), nullptr);
  }
  for (int race = 0; race < kRaces; ++race) {
    const SystemTime started = NowUtc();
    std::barrier sync(kThreads);
    std::vector<Status> results(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        const Manifest m = MakeManifest(fmt::format("race{}-t{}", race, i), NowUtc() + std::chrono::microseconds(1));
        sync.arrive_and_wait();
        auto r = stores[i]->Publish(m, StartedAt(started));
        results[i] = r.ok() ? Status::OK() : r.status();
      });
    }
    for (auto& t : threads) t.join();
    int winners = 0;
    std::string winner;
    for (int i = 0; i < kThreads; ++i) {
      if (results[i].ok()) {
        ++winners;
        winner = fmt::format("race{}-t{}", race, i);
      } else {
        EXPECT_EQ(results[i].kind(), ErrorKind::kPublishConflict) << results[i].ToString();
      }
    }
    EXPECT_EQ(winners, 1) << "race " << race;
    auto current = stores[0]->LoadCurrent();
    ASSERT_TRUE(current.ok() && *current);
    EXPECT_EQ((*current)->ref, winner);
  }
  auto list = stores[0]->ListManifests(0);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), static_cast<size_t>(kThreads * kRaces));
  auto pointer_rows = Query(dsn, fmt::format("SELECT count(*) FROM {}_pointer", table));
  ASSERT_EQ(pointer_rows.size(), 1u);
  EXPECT_EQ(pointer_rows[0][0], std::to_string(kRaces));  // one pointer row per race, no more
}

// Threads move the pointer with compare-and-swap loops: every successful swap replaced exactly the
// ref it expected, so the successes form one chain (no two replaced the same ref: no lost update).
TEST(PostgresManifestStoreTest, ConcurrentSetCurrentLosesNoUpdate) {
  SHARDVEC_REQUIRE_PG_DSN(dsn);
  const std::string table = UniquePgTable("chain");
  constexpr int kThreads = 4;
  constexpr int kMoves = 8;
  auto setup = Open(dsn, table);
  ASSERT_NE(setup, nullptr);
  ASSERT_TRUE(setup->Publish(MakeManifest("start"), StartedAt(NowUtc())).ok());
  const SystemTime long_ago = NowUtc() - std::chrono::hours(1);
  for (int t = 0; t < kThreads; ++t) {
    for (int k = 0; k < kMoves; ++k) {
      // Listed but not current: a rejected publish keeps the pointer on "start".
      auto r = setup->Publish(MakeManifest(fmt::format("m{}-{}", t, k)), StartedAt(long_ago));
      ASSERT_EQ(r.status().kind(), ErrorKind::kPublishConflict);
    }
  }
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> swaps;  // (replaced, new)
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto store = Open(dsn, table, /*ensure_table=*/false);
      if (!store) return;
      for (int k = 0; k < kMoves; ++k) {
        const std::string next = fmt::format("m{}-{}", t, k);
        for (int attempt = 0; attempt < 200; ++attempt) {
          auto current = store->LoadCurrent();
          if (!current.ok() || !*current) break;
          Status s = store->SetCurrent(next, **current);
          if (s.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            swaps.emplace_back((*current)->ref, next);
            break;
          }
          if (s.code() != StatusCode::kConflict) {
            ADD_FAILURE() << s.ToString();
            return;
          }
          ++conflicts;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(swaps.size(), static_cast<size_t>(kThreads * kMoves));
  std::map<std::string, std::string> next_of;
  for (const auto& [from, to] : swaps) {
    EXPECT_TRUE(next_of.emplace(from, to).second) << "two swaps replaced '" << from << "': a lost update";
  }
  std::string at = "start";
  size_t steps = 0;
  while (next_of.count(at) && steps <= swaps.size()) {
    at = next_of[at];
    ++steps;
  }
  EXPECT_EQ(steps, swaps.size());
  EXPECT_EQ((*setup->LoadCurrent())->ref, at);
  auto rows = Query(dsn, fmt::format("SELECT count(*) FROM {}_pointer", table));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], std::to_string(1 + kThreads * kMoves));
}

TEST(PostgresManifestStoreTest, EnsureTableFalseOnAMissingTableIsAClearError) {
  SHARDVEC_REQUIRE_PG_DSN(dsn);
  const std::string table = UniquePgTable("absent");
  PostgresManifestStoreOptions o;
  o.table_name = table;
  o.pointer_table_name = table + "_pointer";
  o.ensure_table = false;
  auto store = OpenPostgresManifestStore(dsn, o);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kNotFound);
  EXPECT_NE(store.status().message().find(table + "_builds"), std::string::npos) << store.status().message();
  EXPECT_NE(store.status().message().find("ensure_table"), std::string::npos) << store.status().message();
  // Nothing was created.
  auto rows = Query(dsn, fmt::format("SELECT to_regclass('{}_builds')::text", table));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_FALSE(rows[0][0]);
}

TEST(PostgresManifestStoreTest, HostileRunIdsAreDataNeverSql) {
  SHARDVEC_REQUIRE_PG_DSN(dsn);
  const std::string table = UniquePgTable("hostile");
  auto store = Open(dsn, table);
  ASSERT_NE(store, nullptr);
  const std::vector<std::string> ids = {
      fmt::format("x'; DROP TABLE {}_builds; --", table), "$1", "%s %(x)s", "\"quoted\" \\ back",
      "ünïcödé 漢字 🙂", std::string(10000, 'r'), "new\nline\ttab"};
  for (const std::string& id : ids) {
    auto r = store->Publish(MakeManifest(id), StartedAt(NowUtc()));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ((*store->LoadCurrent())->ref, id);
    auto loaded = store->LoadManifest(id);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->run_id, id);
    EXPECT_EQ(loaded->shards.size(), 2u);
  }
  auto list = store->ListManifests(0);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), ids.size());

  auto nul = store->Publish(MakeManifest(std::string("a\0b", 3)), StartedAt(NowUtc()));
  EXPECT_EQ(nul.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(nul.status().message().find("run_id"), std::string::npos) << nul.status().message();
  auto bad_utf8 = store->Publish(MakeManifest("bad\xff"), StartedAt(NowUtc()));
  EXPECT_EQ(bad_utf8.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_utf8.status().message().find("run_id"), std::string::npos) << bad_utf8.status().message();
  EXPECT_EQ(store->LoadManifest(std::string("a\0b", 3)).status().code(), StatusCode::kInvalidArgument);
  Manifest huge = MakeManifest("huge");
  huge.shards[1].row_count = int64_t{1} << 40;
  auto too_big = store->Publish(huge, StartedAt(NowUtc()));
  EXPECT_EQ(too_big.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_big.status().message().find("row_count"), std::string::npos) << too_big.status().message();
  EXPECT_EQ(store->LoadManifest("huge").status().code(), StatusCode::kNotFound);  // nothing half-written
}

TEST(PostgresManifestStoreTest, BadTableNamesAreRefusedNamingTheField) {
  // No server needed: names are checked before connecting.
  for (const std::string& bad : std::vector<std::string>{"", "1abc", "a b", "a;drop table x", "a-b", "\"q\"", "s.t.u",
                                                          std::string(60, 'a')}) {
    PostgresManifestStoreOptions o;
    o.table_name = bad;
    auto store = OpenPostgresManifestStore("postgresql://127.0.0.1:1/x", o);
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(store.status().message().find("table_name"), std::string::npos) << store.status().message();
  }
  PostgresManifestStoreOptions o;
  o.pointer_table_name = "ptr; --";
  auto store = OpenPostgresManifestStore("postgresql://127.0.0.1:1/x", o);
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(store.status().message().find("pointer_table_name"), std::string::npos) << store.status().message();
  // A schema-qualified name is one the reference accepts too.
  EXPECT_TRUE(MakePgManifestSql("myschema.manifests", "myschema.ptr", SqlPlaceholders::kDollar).ok());
}

TEST(PostgresManifestStoreTest, PasswordsNeverReachDescribeOrErrors) {
  SHARDVEC_REQUIRE_PG_DSN(dsn);
  auto store = Open(dsn, UniquePgTable("describe"));
  ASSERT_NE(store, nullptr);
  const std::string password = dsn.substr(dsn.find(':', 13) + 1, dsn.find('@') - dsn.find(':', 13) - 1);
  ASSERT_GE(password.size(), 8u) << "the test server's DSN carries a password";
  EXPECT_EQ(store->Describe().find(password), std::string::npos) << store->Describe();
  EXPECT_NE(store->Describe().find("127.0.0.1"), std::string::npos) << store->Describe();

  // A wrong password: PermissionDenied or IOError, never the password in the message.
  std::string wrong = dsn;
  wrong.replace(wrong.find(password), password.size(), "wrong-secret-123");
  auto refused = OpenPostgresManifestStore(wrong, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message().find("wrong-secret-123"), std::string::npos) << refused.status().message();
  // The keyword form too; and an unreachable server is an IOError naming where it went.
  auto keyword = OpenPostgresManifestStore("host=127.0.0.1 port=1 dbname=x password=kw-secret-456", {});
  EXPECT_EQ(keyword.status().code(), StatusCode::kIOError) << keyword.status().ToString();
  EXPECT_EQ(keyword.status().message().find("kw-secret-456"), std::string::npos) << keyword.status().message();
  EXPECT_NE(keyword.status().message().find("127.0.0.1:1"), std::string::npos) << keyword.status().message();
  auto garbage = OpenPostgresManifestStore("postgresql://u:pw-secret-789@host/db?bogus_option=1", {});
  EXPECT_EQ(garbage.status().code(), StatusCode::kInvalidArgument) << garbage.status().ToString();
  EXPECT_EQ(garbage.status().message().find("pw-secret-789"), std::string::npos) << garbage.status().message();
  auto describe = DescribePgDsn("postgresql://alice:s3cret@db.example:5433/prod?sslmode=require");
  ASSERT_TRUE(describe.ok());
  EXPECT_EQ(*describe, "postgresql://alice@db.example:5433/prod");
}

TEST(PostgresManifestStoreTest, AManifestThatDoesNotValidateIsCorruption) {
  SHARDVEC_REQUIRE_PG_DSN(dsn);
  const std::string table = UniquePgTable("corrupt");
  auto store = Open(dsn, table);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Publish(MakeManifest("ok"), StartedAt(NowUtc())).ok());
  // Another writer put a shard outside [0, num_dbs) and an unknown key encoding.
  Query(dsn, fmt::format("UPDATE {}_shards SET db_id = 7 WHERE db_id = 2", table));
  auto loaded = store->LoadManifest("ok");
  EXPECT_EQ(loaded.status().code(), StatusCode::kCorruption) << loaded.status().ToString();
  EXPECT_EQ(loaded.status().kind(), ErrorKind::kManifestParse);
  EXPECT_NE(loaded.status().message().find("db_id 7"), std::string::npos) << loaded.status().message();
}

}  // namespace
}  // namespace shardvec
