// The PostgreSQL server scripts/pg_test_server.py starts on 127.0.0.1, as the tests see it.
#pragma once

#include <string>

#include <gtest/gtest.h>

namespace shardvec::testing {

// SHARDVEC_TEST_PG_DSN, or "" when it is not set.
std::string PgTestDsn();
// Whether a local run opted out of the PostgreSQL tests (SHARDVEC_SKIP_PG_TESTS=1). Never in CI
// (CI set): there a missing server fails the tests.
bool PgTestsOptedOut();
// A fresh table-name prefix, so tests never see each other's rows.
std::string UniquePgTable(const std::string& name);

}  // namespace shardvec::testing

// Declares `std::string var` holding the test server's DSN; without one, fails the test (or skips
// it when a local run opted out).
#define SHARDVEC_REQUIRE_PG_DSN(var)                                                                 \
  const std::string var = ::shardvec::testing::PgTestDsn();                                         \
  if (var.empty()) {                                                                                 \
    if (::shardvec::testing::PgTestsOptedOut()) GTEST_SKIP() << "SHARDVEC_SKIP_PG_TESTS is set";    \
    FAIL() << "no PostgreSQL test server: run the tests with scripts/test, or wrap them as "         \
              ".venv/bin/python scripts/pg_test_server.py -- ctest --test-dir build (a local run "    \
              "may set SHARDVEC_SKIP_PG_TESTS=1 to skip them)";                                      \
  }
