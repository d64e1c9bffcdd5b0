// Filter predicates: every supported form over every column type, nulls included, equals a row-by-row
// evaluation of the same condition in three-valued logic (written out here in C++); bad filters are
// refused with the position; a shard whose columns disagree with the declaration is Corruption.
#include "shard/filter_predicate.h"

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <random>
#include <set>

#include <nlohmann/json.hpp>

#include "shard/filter_column_builder.h"

namespace shardvec {
namespace {

struct Rec {
  std::optional<std::string> lang;
  std::optional<int64_t> year;
  std::optional<double> price;
  std::optional<bool> in_stock;
  std::optional<std::vector<std::string>> tags;
};

using Tri = std::optional<bool>;  // nullopt: unknown (a null was tested)
Tri And(Tri a, Tri b) {
  if (a == false || b == false) return false;
  if (a == true && b == true) return true;
  return std::nullopt;
}
Tri Or(Tri a, Tri b) {
  if (a == true || b == true) return true;
  if (a == false && b == false) return false;
  return std::nullopt;
}
Tri Not(Tri a) { return a ? Tri(!*a) : std::nullopt; }
template <typename T, typename F>
Tri On(const std::optional<T>& v, F f) {
  return v ? Tri(f(*v)) : std::nullopt;
}

std::vector<FilterColumnSpec> Specs() {
  auto specs = ParseFilterColumnSpecs({{"lang", "string"}, {"year", "int"}, {"price", "double"},
                                       {"in_stock", "bool"}, {"tags", "list<string>"}},
                                      "filter_columns");
  EXPECT_TRUE(specs.ok());
  return *specs;
}

std::vector<Rec> RandomRecords(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::vector<std::string> langs = {"en", "de", "fr", "es", "", "日本", "enx"};
  const std::vector<std::string> tag_pool = {"sale", "new", "eco"};
  auto maybe = [&](double p_null) { return std::uniform_real_distribution<double>(0, 1)(rng) >= p_null; };
  std::vector<Rec> out(static_cast<size_t>(n));
  for (Rec& r : out) {
    if (maybe(0.2)) r.lang = langs[rng() % langs.size()];
    if (maybe(0.2)) r.year = 2015 + static_cast<int64_t>(rng() % 11);
    if (maybe(0.2)) r.price = 0.5 * static_cast<double>(rng() % 40);
    if (maybe(0.2)) r.in_stock = rng() % 2 == 0;
    if (maybe(0.2)) {
      r.tags.emplace();
      for (const std::string& t : tag_pool) {
        if (rng() % 3 == 0) r.tags->push_back(t);
      }
    }
  }
  return out;
}

FilterColumns Columns(const std::vector<Rec>& records) {
  FilterColumnsBuilder builder(Specs());
  for (size_t i = 0; i < records.size(); ++i) {
    const Rec& r = records[i];
    nlohmann::json p = nlohmann::json::object();
    if (r.lang) p["lang"] = *r.lang;
    if (r.year) p["year"] = *r.year;
    if (r.price) p["price"] = *r.price;
    if (r.in_stock) p["in_stock"] = *r.in_stock;
    if (r.tags) p["tags"] = *r.tags;
    if (i % 7 == 0 && !r.lang) p["lang"] = nullptr;  // JSON null is null too
    EXPECT_TRUE(builder.AddRow(RecordId(static_cast<int64_t>(i)), p.dump()).ok());
  }
  return builder.Finish({});
}

bool Has(const std::optional<std::vector<std::string>>& tags, const std::string& t) {
  return std::find(tags->begin(), tags->end(), t) != tags->end();
}

TEST(FilterPredicateTest, EveryFormMatchesARowByRowEvaluation) {
  const std::vector<std::pair<std::string, std::function<Tri(const Rec&)>>> cases = {
      {"lang == 'en'", [](const Rec& r) { return On(r.lang, [](auto& v) { return v == "en"; }); }},
      {"'en' == lang", [](const Rec& r) { return On(r.lang, [](auto& v) { return v == "en"; }); }},
      {"lang != 'en'", [](const Rec& r) { return On(r.lang, [](auto& v) { return v != "en"; }); }},
      {"lang == 'absent'", [](const Rec& r) { return On(r.lang, [](auto& v) { return v == "absent"; }); }},
      {"lang < 'es'", [](const Rec& r) { return On(r.lang, [](auto& v) { return v < "es"; }); }},
      {"lang <= 'es'", [](const Rec& r) { return On(r.lang, [](auto& v) { return v <= "es"; }); }},
      {"lang > 'en'", [](const Rec& r) { return On(r.lang, [](auto& v) { return v > "en"; }); }},
      {"'en' <= lang", [](const Rec& r) { return On(r.lang, [](auto& v) { return v >= "en"; }); }},
      {"lang in ['en', 'de', 'zz']",
       [](const Rec& r) { return On(r.lang, [](auto& v) { return v == "en" || v == "de"; }); }},
      {"lang.startsWith('e')", [](const Rec& r) { return On(r.lang, [](auto& v) { return v.starts_with("e"); }); }},
      {"lang.endsWith('n')", [](const Rec& r) { return On(r.lang, [](auto& v) { return v.ends_with("n"); }); }},
      {"lang.contains('本')",
       [](const Rec& r) { return On(r.lang, [](auto& v) { return v.find("本") != std::string::npos; }); }},
      {"year >= 2020", [](const Rec& r) { return On(r.year, [](auto v) { return v >= 2020; }); }},
      {"2020 < year", [](const Rec& r) { return On(r.year, [](auto v) { return v > 2020; }); }},
      {"year == 2021", [](const Rec& r) { return On(r.year, [](auto v) { return v == 2021; }); }},
      {"year > 2020.5", [](const Rec& r) { return On(r.year, [](auto v) { return v > 2020.5; }); }},
      {"year in [2016, 2021, 3000]",
       [](const Rec& r) { return On(r.year, [](auto v) { return v == 2016 || v == 2021; }); }},
      {"price < 10", [](const Rec& r) { return On(r.price, [](auto v) { return v < 10; }); }},
      {"price <= 9.5", [](const Rec& r) { return On(r.price, [](auto v) { return v <= 9.5; }); }},
      {"price != 0.0", [](const Rec& r) { return On(r.price, [](auto v) { return v != 0; }); }},
      {"price in [1.5, 2]", [](const Rec& r) { return On(r.price, [](auto v) { return v == 1.5 || v == 2; }); }},
      {"in_stock", [](const Rec& r) { return r.in_stock; }},
      {"!in_stock", [](const Rec& r) { return Not(r.in_stock); }},
      {"in_stock == false", [](const Rec& r) { return On(r.in_stock, [](auto v) { return !v; }); }},
      {"in_stock != true", [](const Rec& r) { return On(r.in_stock, [](auto v) { return !v; }); }},
      {"in_stock in [true]", [](const Rec& r) { return r.in_stock; }},
      {"'sale' in tags", [](const Rec& r) { return On(r.tags, [&](auto&) { return Has(r.tags, "sale"); }); }},
      {"'none' in tags", [](const Rec& r) { return On(r.tags, [](auto&) { return false; }); }},
      {"lang == null", [](const Rec& r) { return Tri(!r.lang); }},
      {"null != tags", [](const Rec& r) { return Tri(r.tags.has_value()); }},
      {"lang == 'en' && year >= 2020",
       [](const Rec& r) {
         return And(On(r.lang, [](auto& v) { return v == "en"; }), On(r.year, [](auto v) { return v >= 2020; }));
       }},
      {"lang == 'en' || year >= 2020",
       [](const Rec& r) {
         return Or(On(r.lang, [](auto& v) { return v == "en"; }), On(r.year, [](auto v) { return v >= 2020; }));
       }},
      {"!(lang == 'en') && 'sale' in tags",
       [](const Rec& r) {
         return And(Not(On(r.lang, [](auto& v) { return v == "en"; })),
                    On(r.tags, [&](auto&) { return Has(r.tags, "sale"); }));
       }},
      {"false && lang == 'en'", [](const Rec&) { return Tri(false); }},
      {"true || year > 1", [](const Rec&) { return Tri(true); }},
      {"lang == null || lang != 'en'",
       [](const Rec& r) { return Or(Tri(!r.lang), On(r.lang, [](auto& v) { return v != "en"; })); }},
      {"!(price > 5.0 || !in_stock)",
       [](const Rec& r) { return Not(Or(On(r.price, [](auto v) { return v > 5; }), Not(r.in_stock))); }},
      {"true", [](const Rec&) { return Tri(true); }},
      {"false", [](const Rec&) { return Tri(false); }},
  };
  for (const int64_t n : {0, 1, 63, 64, 65, 1000}) {
    const std::vector<Rec> records = RandomRecords(n, 7 + static_cast<uint64_t>(n));
    const FilterColumns columns = Columns(records);
    ASSERT_EQ(columns.rows, n);
    for (const auto& [expr, expected] : cases) {
      auto predicate = FilterPredicate::Compile(expr, Specs());
      ASSERT_TRUE(predicate.ok()) << expr << ": " << predicate.status().ToString();
      EXPECT_EQ(predicate->expression(), expr);
      auto bits = predicate->Evaluate(columns, "s0");
      ASSERT_TRUE(bits.ok()) << expr << ": " << bits.status().ToString();
      ASSERT_EQ(bits->size(), BitmapWords(n));
      int64_t passing = 0;
      for (int64_t r = 0; r < n; ++r) {
        const bool got = ((*bits)[static_cast<size_t>(r / 64)] >> (r % 64)) & 1;
        const bool want = expected(records[static_cast<size_t>(r)]) == true;
        passing += want;
        EXPECT_EQ(got, want) << expr << " row " << r << " of " << n;
      }
      EXPECT_EQ(CountRows(*bits), passing) << expr;  // no bit past the last row
    }
  }
}

TEST(FilterPredicateTest, BadFiltersAreRefusedWithThePosition) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"colour == 'red'", {"unknown column 'colour'", "column 1", "lang, price"}},
      {"year == 'x'", {"column 'year' is int", "cannot be compared with a string", "column 9"}},
      {"lang == 5", {"column 'lang' is string", "an int"}},
      {"in_stock < true", {"column 'in_stock' is bool"}},
      {"year + 1 > 2020", {"'+' is not supported in a filter", "column 6"}},
      {"year == price", {"comparing two columns"}},
      {"lang", {"column 'lang' is string, not a condition"}},
      {"'x'", {"a string literal is not a condition"}},
      {"year < null", {"null can only be tested with == or !="}},
      {"tags == 'sale'", {"list<string>", "'x' in tags"}},
      {"lang in tags_x", {"unknown column 'tags_x'"}},
      {"'sale' in lang", {"column 'lang' is string"}},
      {"year in [2020, 'x']", {"cannot be compared with a string"}},
      {"year.startsWith('2')", {"applies to string columns"}},
      {"lang.startsWith(lang)", {"startsWith in a filter is column.startsWith('literal')"}},
      {"lang == 'en' &&", {"syntax error", "column 16"}},
      {"size(lang) > 2", {"'size' is not supported"}},
  };
  for (const auto& [expr, parts] : cases) {
    auto predicate = FilterPredicate::Compile(expr, Specs());
    ASSERT_FALSE(predicate.ok()) << expr;
    EXPECT_EQ(predicate.status().code(), StatusCode::kInvalidArgument) << expr;
    const std::string msg(predicate.status().message());
    EXPECT_TRUE(msg.starts_with("filter: ")) << msg;
    for (const std::string& part : parts) EXPECT_NE(msg.find(part), std::string::npos) << expr << " -> " << msg;
  }
}

TEST(FilterPredicateTest, AShardWhoseColumnsDisagreeIsCorruption) {
  const FilterColumns columns = Columns(RandomRecords(10, 1));
  FilterColumns missing = columns;
  std::erase_if(missing.columns, [](const FilterColumn& c) { return c.name == "year"; });
  auto predicate = FilterPredicate::Compile("year > 2000 || lang == 'en'", Specs());
  ASSERT_TRUE(predicate.ok());
  auto bits = predicate->Evaluate(missing, "shard 3");
  ASSERT_FALSE(bits.ok());
  EXPECT_EQ(bits.status().code(), StatusCode::kCorruption);
  EXPECT_NE(bits.status().message().find("shard 3"), std::string::npos) << bits.status().ToString();
  EXPECT_NE(bits.status().message().find("'year'"), std::string::npos);
  FilterColumns short_column = columns;
  for (FilterColumn& c : short_column.columns) {
    if (c.name == "lang") c.codes.pop_back();
  }
  auto lang = FilterPredicate::Compile("lang == 'en'", Specs());
  ASSERT_TRUE(lang.ok());
  EXPECT_EQ(lang->Evaluate(short_column, "s").status().code(), StatusCode::kCorruption);
}

// The bitmap helpers the filtered scan uses: runs of set rows and counts inside any range, against a
// row-by-row reading of random bitmaps (word edges, empty words and full words included).
TEST(FilterPredicateTest, SetRunsAndCountsMatchARowByRowReading) {
  std::mt19937_64 rng(3);
  for (const int64_t rows : {1, 63, 64, 65, 200, 1000}) {
    for (const int density : {0, 1, 50, 99, 100}) {
      std::vector<uint64_t> bits(BitmapWords(rows), 0);
      for (int64_t r = 0; r < rows; ++r) {
        if (static_cast<int>(rng() % 100) < density) bits[static_cast<size_t>(r / 64)] |= uint64_t{1} << (r % 64);
      }
      for (int trial = 0; trial < 20; ++trial) {
        int64_t a = static_cast<int64_t>(rng() % static_cast<uint64_t>(rows + 1));
        int64_t b = static_cast<int64_t>(rng() % static_cast<uint64_t>(rows + 1));
        if (a > b) std::swap(a, b);
        std::vector<RowRange> want;
        int64_t count = 0;
        for (int64_t r = a; r < b; ++r) {
          if (!((bits[static_cast<size_t>(r / 64)] >> (r % 64)) & 1)) continue;
          ++count;
          if (!want.empty() && want.back().end == r) {
            ++want.back().end;
          } else {
            want.push_back(RowRange{r, r + 1});
          }
        }
        const std::vector<RowRange> got = SetRuns(bits, RowRange{a, b});
        ASSERT_EQ(got.size(), want.size()) << rows << " " << density << " [" << a << ", " << b << ")";
        for (size_t i = 0; i < got.size(); ++i) {
          EXPECT_EQ(got[i].begin, want[i].begin);
          EXPECT_EQ(got[i].end, want[i].end);
        }
        EXPECT_EQ(CountSet(bits, RowRange{a, b}), count);
      }
    }
  }
}

}  // namespace
}  // namespace shardvec

namespace shardvec {
namespace {

TEST(FilterPredicateTest, CanonicalTextIgnoresHowAFilterIsWrittenButNotWhatItSays) {
  auto canonical = [](const std::string& expr) {
    auto predicate = FilterPredicate::Compile(expr, Specs());
    EXPECT_TRUE(predicate.ok()) << expr << ": " << predicate.status().ToString();
    return predicate.ok() ? predicate->canonical() : std::string();
  };
  EXPECT_EQ(canonical("year >= 2020"), canonical("2020 <= year"));
  EXPECT_EQ(canonical("year >= 2020"), canonical("(year>=2020.0)"));
  EXPECT_EQ(canonical("lang == 'en' && !in_stock"), canonical("  ( 'en' == lang ) && ! in_stock"));
  // Different filters never share a text: other operators, literals, columns, nesting.
  const std::vector<std::string> distinct = {
      "year >= 2020", "year > 2020", "year >= 2021", "year >= 9007199254740993", "year >= 9007199254740992",
      "price >= 2020.0", "lang == 'a'", "lang == 'b'", "lang in ['a', 'b']", "lang in ['a,b']", "lang == 'a,b'",
      "lang == 'a' && lang == 'b'", "lang == 'a' || lang == 'b'", "!(lang == 'a') || lang == 'b'",
      "!(lang == 'a' || lang == 'b')", "lang.startsWith('a')", "lang.endsWith('a')", "lang.contains('a')",
      "lang == null", "lang != null", "in_stock", "in_stock == true", "'a' in tags", "true", "false",
      "lang == '1:a,'", "lang in ['1:a,', '']"};
  std::set<std::string> texts;
  for (const std::string& expr : distinct) EXPECT_TRUE(texts.insert(canonical(expr)).second) << expr;
}

}  // namespace
}  // namespace shardvec
