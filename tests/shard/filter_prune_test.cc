// Shard pruning from filter statistics: a shard is ruled out only when no row passes (checked on
// random shards against the filter's own evaluation over the columns), exactly where the statistics
// say enough (ranges, bool counts, listed strings, nulls), and never when they do not (many strings,
// missing or damaged statistics).
#include "shard/filter_prune.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shard/filter_column_builder.h"

namespace shardvec {
namespace {

// The columns, in name order.
std::vector<FilterColumnSpec> Specs() {
  return {{"in_stock", FilterType::kBool}, {"lang", FilterType::kString}, {"price", FilterType::kDouble},
          {"tags", FilterType::kStringList}, {"year", FilterType::kInt}};
}

// One shard of these payloads: its columns and its statistics (as the writer records them).
struct Shard {
  FilterColumns columns;
  nlohmann::json stats;
};

Shard MakeShard(const std::vector<nlohmann::json>& payloads) {
  FilterColumnsBuilder builder(Specs());
  for (size_t i = 0; i < payloads.size(); ++i) {
    EXPECT_TRUE(builder.AddRow(RecordId(static_cast<int64_t>(i)), payloads[i].dump()).ok());
  }
  Shard shard{builder.Finish({}), {}};
  shard.stats = FilterColumnStats(shard.columns);
  return shard;
}

FilterPredicate Compile(const std::string& expr) {
  auto predicate = FilterPredicate::Compile(expr, Specs());
  EXPECT_TRUE(predicate.ok()) << expr << ": " << predicate.status().ToString();
  return std::move(predicate).value();
}

int64_t Passing(const FilterPredicate& predicate, const Shard& shard) {
  auto bits = predicate.Evaluate(shard.columns, "s");
  EXPECT_TRUE(bits.ok()) << bits.status().ToString();
  return bits.ok() ? CountRows(*bits) : -1;
}

bool Prunes(const std::string& expr, const Shard& shard) {
  return FilterProvesNoMatch(Compile(expr), shard.stats, shard.columns.rows);
}

// A small shard whose values come from narrow, shard-specific domains (so many filters match none
// of its rows), with nulls.
std::vector<nlohmann::json> RandomPayloads(std::mt19937_64& rng) {
  const std::vector<std::string> langs = {"de", "en", "es", "fr", "", "日本", "enx"};
  const std::vector<std::string> tag_pool = {"eco", "new", "sale"};
  const int64_t rows = 1 + static_cast<int64_t>(rng() % 30);
  const int64_t year0 = 2010 + static_cast<int64_t>(rng() % 10), year_span = 1 + static_cast<int64_t>(rng() % 4);
  const double price0 = 0.5 * static_cast<double>(rng() % 20);
  const size_t lang0 = rng() % langs.size(), lang_span = 1 + rng() % 3;
  const double null_rate = std::vector<double>{0.0, 0.3, 1.0}[rng() % 3];
  const uint64_t bools = rng() % 3;  // 0: all false, 1: all true, 2: both
  auto present = [&] { return std::uniform_real_distribution<double>(0, 1)(rng) >= null_rate; };
  std::vector<nlohmann::json> out;
  for (int64_t r = 0; r < rows; ++r) {
    nlohmann::json p = nlohmann::json::object();
    if (present()) p["lang"] = langs[(lang0 + rng() % lang_span) % langs.size()];
    if (present()) p["year"] = year0 + static_cast<int64_t>(rng() % static_cast<uint64_t>(year_span));
    if (present()) p["price"] = price0 + 0.25 * static_cast<double>(rng() % 4);
    if (present()) p["in_stock"] = bools == 2 ? rng() % 2 == 0 : bools == 1;
    if (present()) {
      nlohmann::json tags = nlohmann::json::array();
      for (size_t t = rng() % 2; t < tag_pool.size(); t += 2) {
        if (rng() % 2 == 0) tags.push_back(tag_pool[t]);
      }
      p["tags"] = tags;
    }
    if (r % 5 == 0 && !p.contains("lang")) p["lang"] = nullptr;
    out.push_back(std::move(p));
  }
  return out;
}

// Single tests the statistics settle exactly: a shard is pruned when, and only when, no row passes.
const std::vector<std::string> kExactTests = {
    "lang == 'en'", "lang != 'en'", "lang < 'es'", "lang >= 'es'", "lang in ['fr', 'zz']", "lang.startsWith('e')",
    "lang.endsWith('x')", "lang.contains('本')", "year < 2014", "year <= 2014", "year > 2015", "year >= 2015.5",
    "price < 3.0", "price > 7", "in_stock", "!in_stock", "in_stock == true", "in_stock != true",
    "in_stock in [false]", "'sale' in tags", "'new' in tags", "'none' in tags", "lang == null", "year != null",
    "tags == null", "in_stock != null", "true", "false",
};

// Combinations, sets and equalities over ranges: pruning may miss some empty shards, never a match.
const std::vector<std::string> kOtherTests = {
    "year == 2013", "year != 2013", "year in [2011, 2016]", "price in [1.5, 20.0]", "price == 4.25",
    "lang == 'en' && year >= 2015", "lang == 'en' || year >= 2015", "!(lang == 'en') && 'sale' in tags",
    "!(year >= 2012 || !in_stock)", "lang == null || lang != 'en'", "false && lang == 'en'", "true || year > 1",
    "!(price > 5.0) && (year < 2012 || 'eco' in tags)", "!(lang == null) && !(year == null)",
};

TEST(FilterPruneTest, PrunedShardsHoldNoPassingRowAndExactTestsPruneEveryEmptyShard) {
  std::mt19937_64 rng(20261207);
  int64_t pruned = 0, empty = 0;
  for (int shard_index = 0; shard_index < 300; ++shard_index) {
    const Shard shard = MakeShard(RandomPayloads(rng));
    for (const std::string& expr : kExactTests) {
      const int64_t passing = Passing(Compile(expr), shard);
      EXPECT_EQ(Prunes(expr, shard), passing == 0) << expr << " on " << shard.stats.dump();
      pruned += passing == 0;
    }
    for (const std::string& expr : kOtherTests) {
      const int64_t passing = Passing(Compile(expr), shard);
      empty += passing == 0;
      if (Prunes(expr, shard)) {
        EXPECT_EQ(passing, 0) << expr << " pruned on " << shard.stats.dump();
        ++pruned;
      }
    }
  }
  // The random shards exercise both answers.
  EXPECT_GT(pruned, 1000);
  EXPECT_GT(empty, 300);
}

TEST(FilterPruneTest, NullsAreUnknownAndBooleanLogicFollowsThreeValuedRules) {
  // Years 2000..2005, langs en and de, one row with every column null.
  std::vector<nlohmann::json> payloads;
  for (int64_t y = 2000; y <= 2005; ++y) payloads.push_back({{"year", y}, {"lang", y % 2 ? "en" : "de"}});
  payloads.push_back(nlohmann::json::object());
  const Shard shard = MakeShard(payloads);
  // (filter, pruned?)
  const std::vector<std::pair<std::string, bool>> cases = {
      {"year > 2010", true},
      {"year > 2010 && lang == 'en'", true},
      {"year > 2010 || lang == 'en'", false},
      {"year > 2010 || lang == 'fr'", true},
      {"!(year <= 2005)", true},  // the null row's year stays unknown under !
      {"!(year <= 2004)", false},
      {"year == null", false},
      {"year == null || year > 2010", false},
      {"year in [1999, 2006]", true},
      {"year in [1999, 2003]", false},
      {"lang in ['fr']", true},
      {"price > 0.0", true},  // every price is null
      {"!(price > 0.0)", true},
      {"price == null", false},
      {"price != null", true},
      {"in_stock || 'x' in tags", true},
      {"in_stock || true", false},
      {"false", true},
  };
  for (const auto& [expr, pruned] : cases) EXPECT_EQ(Prunes(expr, shard), pruned) << expr;
  // A shard where every year is 2003: `year != 2003` cannot hold, `year == 2003` must.
  const Shard single = MakeShard({{{"year", 2003}}, {{"year", 2003}}});
  EXPECT_TRUE(Prunes("year != 2003", single));
  EXPECT_TRUE(Prunes("!(year == 2003)", single));
  EXPECT_FALSE(Prunes("year == 2003.0", single));
  EXPECT_TRUE(Prunes("year in [2003] && year < 2003", single));
}

TEST(FilterPruneTest, StringTestsBeyondTheListedValuesAreMaybe) {
  // 100 distinct langs: the statistics say "many", so no string test can prune.
  std::vector<nlohmann::json> payloads;
  for (int i = 0; i < 100; ++i) {
    payloads.push_back({{"lang", "l" + std::to_string(i)}, {"tags", nlohmann::json::array({"t" + std::to_string(i)})}});
  }
  const Shard many = MakeShard(payloads);
  ASSERT_TRUE(many.stats["lang"].contains("many"));
  for (const std::string expr : {"lang == 'zz'", "lang.startsWith('q')", "lang.contains('q')", "lang < 'a'",
                                 "lang in ['x']", "'zz' in tags"}) {
    EXPECT_EQ(Passing(Compile(expr), many), 0) << expr;
    EXPECT_FALSE(Prunes(expr, many)) << expr;
  }
  // Listed values settle startsWith, endsWith and contains.
  const Shard listed = MakeShard({{{"lang", "english"}}, {{"lang", "german"}}});
  EXPECT_TRUE(Prunes("lang.startsWith('q')", listed));
  EXPECT_FALSE(Prunes("lang.startsWith('g')", listed));
  EXPECT_TRUE(Prunes("lang.contains('xyz')", listed));
  EXPECT_FALSE(Prunes("lang.endsWith('sh')", listed));
  // Lists: only empty lists hold no value at all.
  const Shard empty_lists = MakeShard({{{"tags", nlohmann::json::array()}}, {{"tags", nlohmann::json::array()}}});
  EXPECT_TRUE(Prunes("'sale' in tags", empty_lists));
  EXPECT_FALSE(Prunes("tags != null", empty_lists));
}

TEST(FilterPruneTest, MissingOrDamagedStatisticsPruneNothing) {
  const FilterPredicate year = Compile("year > 2010");
  const FilterPredicate lang = Compile("lang == 'zz'");
  EXPECT_FALSE(FilterProvesNoMatch(year, nlohmann::json::object(), 10));
  EXPECT_FALSE(FilterProvesNoMatch(year, nlohmann::json::array(), 10));
  EXPECT_FALSE(FilterProvesNoMatch(year, nlohmann::json("x"), 10));
  // (filter, statistics) pairs: each statistic the filter reads is missing or damaged.
  const std::vector<std::pair<const FilterPredicate*, nlohmann::json>> damaged = {
      {&year, {{"year", "x"}}},
      {&year, {{"year", {{"min", 1}, {"max", 2}}}}},                 // no null count
      {&year, {{"year", {{"nulls", -1}, {"min", 1}, {"max", 2}}}}},  // negative
      {&year, {{"year", {{"nulls", 11}, {"min", 1}, {"max", 2}}}}},  // more nulls than rows
      {&year, {{"year", {{"nulls", 0}, {"min", "1"}, {"max", 2}}}}}, // not a number
      {&year, {{"year", {{"nulls", 0}, {"min", 5}, {"max", 2}}}}},   // min above max
      {&year, {{"year", {{"nulls", 0}, {"max", 2}}}}},               // no min
      {&lang, {{"lang", {{"nulls", 0}, {"distinct", 2}, {"values", nlohmann::json::array({"b", "a"})}}}}},  // not ascending
      {&lang, {{"lang", {{"nulls", 0}, {"distinct", 2}, {"values", nlohmann::json::array({"a", 1})}}}}},    // not strings
      {&lang, {{"lang", {{"nulls", 0}, {"distinct", 2}, {"values", nlohmann::json::array()}}}}},  // none for 10 rows
      {&lang, {{"lang", {{"nulls", 0}, {"distinct", 2}, {"values", "a"}}}}},
  };
  for (const auto& [filter, stats] : damaged) {
    EXPECT_FALSE(FilterProvesNoMatch(*filter, stats, 10)) << filter->expression() << " on " << stats.dump();
  }
  // Bool counts that do not add up to the rows with a value.
  EXPECT_FALSE(FilterProvesNoMatch(Compile("in_stock"), {{"in_stock", {{"nulls", 0}, {"true", 0}, {"false", 3}}}}, 10));
  EXPECT_TRUE(FilterProvesNoMatch(Compile("in_stock"), {{"in_stock", {{"nulls", 0}, {"true", 0}, {"false", 10}}}}, 10));
  // A shard without rows holds no match.
  EXPECT_TRUE(FilterProvesNoMatch(Compile("true"), nlohmann::json::object(), 0));
}

}  // namespace
}  // namespace shardvec
