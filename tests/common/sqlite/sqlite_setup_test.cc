// The settings every connection to an untrusted file (a shard, a manifest) gets.
#include "common/sqlite/sqlite_setup.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

namespace shardvec {
namespace {

struct Db {
  Db() { EXPECT_EQ(sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr), SQLITE_OK); }
  ~Db() { sqlite3_close(db); }
  // The error of running `sql`, or "" when it ran.
  std::string Error(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string out = rc == SQLITE_OK ? "" : (err ? err : "error");
    sqlite3_free(err);
    return out;
  }
  int Config(int op) {
    int value = -1;
    EXPECT_EQ(sqlite3_db_config(db, op, -1, &value), SQLITE_OK);
    return value;
  }
  sqlite3* db = nullptr;
};

TEST(HardenUntrustedConnectionTest, SetsEveryDefensiveOptionAndReadsItBack) {
  Db d;
  ASSERT_TRUE(HardenUntrustedConnection(d.db).ok());
  EXPECT_EQ(d.Config(SQLITE_DBCONFIG_DEFENSIVE), 1);
  EXPECT_EQ(d.Config(SQLITE_DBCONFIG_TRUSTED_SCHEMA), 0);
  EXPECT_EQ(d.Config(SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION), 0);
  EXPECT_EQ(d.Config(SQLITE_DBCONFIG_ENABLE_VIEW), 0);
  EXPECT_EQ(d.Config(SQLITE_DBCONFIG_ENABLE_TRIGGER), 0);
}

TEST(HardenUntrustedConnectionTest, LoadExtensionViewsAndTriggersDoNotRun) {
  Db d;
  // Prepared while trusted: a file may carry any schema; what matters is what runs afterwards.
  ASSERT_EQ(d.Error("CREATE TABLE t(a); INSERT INTO t VALUES (1);"
                    "CREATE VIEW v AS SELECT a FROM t;"
                    "CREATE TABLE log(a); CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.a); END;"),
            "");
  sqlite3_enable_load_extension(d.db, 1);  // as if something had turned it on
  ASSERT_TRUE(HardenUntrustedConnection(d.db).ok());
  EXPECT_NE(d.Error("SELECT load_extension('/nonexistent/evil.so')").find("not authorized"), std::string::npos);
  EXPECT_NE(d.Error("SELECT * FROM v").find("prohibited"), std::string::npos) << d.Error("SELECT * FROM v");
  // Triggers are off: an insert does not fire tr (we never write an untrusted file; this shows the setting).
  EXPECT_EQ(d.Error("INSERT INTO t VALUES (2)"), "");
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(d.db, "SELECT count(*) FROM log", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 0);
  sqlite3_finalize(stmt);
}

}  // namespace
}  // namespace shardvec
