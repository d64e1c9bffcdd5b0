#include "support/pg_test_env.h"

#include <cstdlib>
#include <string_view>

#include "common/random_id.h"

namespace shardvec::testing {

std::string PgTestDsn() {
  const char* dsn = std::getenv("SHARDVEC_TEST_PG_DSN");
  return dsn ? dsn : "";
}

bool PgTestsOptedOut() {
  const char* skip = std::getenv("SHARDVEC_SKIP_PG_TESTS");
  const char* ci = std::getenv("CI");
  const bool in_ci = ci != nullptr && *ci != '\0' && std::string_view(ci) != "false" && std::string_view(ci) != "0";
  return skip != nullptr && std::string_view(skip) == "1" && !in_ci;
}

std::string UniquePgTable(const std::string& name) { return "t_" + name + "_" + NewUuidHex().substr(0, 12); }

}  // namespace shardvec::testing
