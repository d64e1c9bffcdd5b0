// SqliteStatement: prepares exactly the text it is given, reports why preparing failed, and
// finalizes itself (a connection with no statements left open closes with SQLITE_OK).
#include "common/sqlite/sqlite_statement.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <optional>
#include <string>
#include <string_view>

namespace shardvec {
namespace {

sqlite3* OpenMemory() {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr), SQLITE_OK);
  return db;
}

TEST(SqliteStatementTest, PreparesOnlyTheBytesOfItsStringView) {
  sqlite3* db = OpenMemory();
  const std::string text = "SELECT 7, 'x' this part is not SQL";
  {
    SqliteStatement stmt(db, std::string_view(text).substr(0, 13));
    ASSERT_TRUE(stmt.ok()) << sqlite3_errmsg(db);
    EXPECT_EQ(stmt.prepare_rc(), SQLITE_OK);
    ASSERT_EQ(stmt.Step(), SQLITE_ROW);
    EXPECT_EQ(stmt.Int(0), 7);
    EXPECT_EQ(stmt.Text(1), "x");
    EXPECT_EQ(stmt.Step(), SQLITE_DONE);
  }
  EXPECT_EQ(sqlite3_close(db), SQLITE_OK);
}

TEST(SqliteStatementTest, ReportsThePrepareErrorCode) {
  sqlite3* db = OpenMemory();
  {
    SqliteStatement missing(db, "SELECT * FROM no_such_table");
    EXPECT_FALSE(missing.ok());
    EXPECT_EQ(missing.prepare_rc(), SQLITE_ERROR);
    EXPECT_EQ(missing.get(), nullptr);
    EXPECT_NE(std::string(sqlite3_errmsg(db)).find("no_such_table"), std::string::npos);
  }
  EXPECT_EQ(sqlite3_close(db), SQLITE_OK);
}

TEST(SqliteStatementTest, PersistentStatementsRunAgainAndFinalizeThemselves) {
  sqlite3* db = OpenMemory();
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (v INTEGER)", nullptr, nullptr, nullptr), SQLITE_OK);
  std::optional<SqliteStatement> insert;
  insert.emplace(db, "INSERT INTO t(v) VALUES (?)", SQLITE_PREPARE_PERSISTENT);
  ASSERT_TRUE(insert->ok());
  for (int v : {1, 2, 3}) {
    sqlite3_bind_int64(insert->get(), 1, v);
    EXPECT_EQ(insert->Run(), SQLITE_DONE);
  }
  // While a statement is open the connection cannot close; once it is gone, it can.
  EXPECT_EQ(sqlite3_close(db), SQLITE_BUSY);
  insert.reset();
  {
    SqliteStatement sum(db, "SELECT sum(v) FROM t");
    ASSERT_EQ(sum.Step(), SQLITE_ROW);
    EXPECT_EQ(sum.Int(0), 6);
  }
  EXPECT_EQ(sqlite3_close(db), SQLITE_OK);
}

}  // namespace
}  // namespace shardvec
