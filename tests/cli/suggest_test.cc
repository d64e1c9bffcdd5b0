// The edit distance and the nearest-name choice behind "did you mean", and the IEC size text.
#include "cli/suggest.h"

#include <gtest/gtest.h>

#include "cli/cli_common.h"

namespace shardvec::cli {
namespace {

TEST(EditDistanceTest, CountsInsertionsDeletionsSubstitutionsAndNeighbourSwapsAsOneStep) {
  EXPECT_EQ(EditDistance("search", "search"), 0u);
  EXPECT_EQ(EditDistance("serach", "search"), 1u);  // a swap
  EXPECT_EQ(EditDistance("num-probe", "num-probes"), 1u);
  EXPECT_EQ(EditDistance("num-probess", "num-probes"), 1u);
  EXPECT_EQ(EditDistance("top_k", "top-k"), 1u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("abc", ""), 3u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

TEST(NearestNamesTest, OffersOnlyCloseNamesNearestFirst) {
  const std::vector<std::string> subs = {"build", "history", "rollback", "cleanup", "search", "info", "shards", "route"};
  EXPECT_EQ(NearestNames("serach", subs), std::vector<std::string>{"search"});
  EXPECT_EQ(NearestNames("inf", subs), std::vector<std::string>{"info"});
  EXPECT_EQ(NearestNames("shard", subs), std::vector<std::string>{"shards"});
  EXPECT_TRUE(NearestNames("frobnicate", subs).empty());
  EXPECT_TRUE(NearestNames("xy", subs).empty());
  const std::vector<std::string> flags = {"--num-probes", "--num-dbs", "--top-k", "--ref", "--run-id"};
  EXPECT_EQ(NearestNames("--num-probe", flags), std::vector<std::string>{"--num-probes"});
  EXPECT_EQ(NearestNames("--rev", flags), std::vector<std::string>{"--ref"});
  // Ties: every name at the nearest distance, in candidate order.
  EXPECT_EQ(NearestNames("--num-db", {"--num-dbs", "--num-dbx"}), (std::vector<std::string>{"--num-dbs", "--num-dbx"}));
}

TEST(FindUnknownNameTest, WalksSubcommandsAndSkipsFlagValues) {
  CLI::App app;
  app.add_option("--metrics-file", "global");
  CLI::App* search = app.add_subcommand("search");
  std::string store;
  int probes = 0;
  bool json = false;
  search->add_option("--store", store);
  search->add_option("--num-probes", probes);
  search->add_flag("--json", json);
  CLI::App* cache = app.add_subcommand("cache");
  cache->add_subcommand("ls");
  EXPECT_FALSE(FindUnknownName(app, {"search", "--store", "--sotre-like-value", "--json"}));
  EXPECT_FALSE(FindUnknownName(app, {"search", "--metrics-file=m", "--num-probes", "3"}));
  auto flag = FindUnknownName(app, {"search", "--store", "s", "--num-probe", "3"});
  ASSERT_TRUE(flag);
  EXPECT_TRUE(flag->is_flag);
  EXPECT_EQ(flag->command, "search");
  EXPECT_EQ(flag->suggestions, std::vector<std::string>{"--num-probes"});
  auto sub = FindUnknownName(app, {"cache", "lss"});
  ASSERT_TRUE(sub);
  EXPECT_EQ(UnknownNameMessage(*sub), "'lss' is not a 'cache' subcommand; did you mean 'ls'?");
  EXPECT_EQ(CommandPath(app, {"--metrics-file", "m", "cache", "ls", "--x"}), "cache ls");
}

TEST(SizeTextTest, IecUnitsWithOneDecimalOrWholeBytes) {
  EXPECT_EQ(SizeText(0, false), "0 B");
  EXPECT_EQ(SizeText(1023, false), "1023 B");
  EXPECT_EQ(SizeText(1024, false), "1.0 KiB");
  EXPECT_EQ(SizeText(1536, false), "1.5 KiB");
  EXPECT_EQ(SizeText(1048575, false), "1.0 MiB");
  EXPECT_EQ(SizeText(int64_t{215} * 1048576 + 734003, false), "215.7 MiB");
  EXPECT_EQ(SizeText(int64_t{3} << 30, false), "3.0 GiB");
  EXPECT_EQ(SizeText(1536, true), "1536 bytes");
}

}  // namespace
}  // namespace shardvec::cli
