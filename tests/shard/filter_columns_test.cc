#include "shard/filter_columns.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <span>

#include <nlohmann/json.hpp>

#include "shard/filter_column_builder.h"
#include "shard/filter_column_table.h"
#include "shard/shard_builder.h"
#include "shard/shard_searcher.h"
#include "shardvec/text.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::TempDir;

const std::vector<FilterColumnSpec> kAllTypes = {{"lang", FilterType::kString},
                                                 {"year", FilterType::kInt},
                                                 {"price", FilterType::kDouble},
                                                 {"in_stock", FilterType::kBool},
                                                 {"tags", FilterType::kStringList}};

// Row r's payload: every type, with nulls (missing keys and JSON null), unicode and a long list.
nlohmann::json PayloadOf(int64_t r) {
  nlohmann::json p = nlohmann::json::object();
  if (r % 5 != 0) p["lang"] = r % 3 == 0 ? "en" : (r % 3 == 1 ? "日本語" : "ελληνικά");
  if (r % 7 == 3) p["lang"] = nullptr;
  if (r % 4 != 1) p["year"] = r % 11 == 0 ? std::numeric_limits<int64_t>::min() + r : 1990 + r;
  if (r % 6 != 2) p["price"] = r % 2 == 0 ? nlohmann::json(r) : nlohmann::json(r * 0.25 - 3.5);
  if (r % 3 != 2) p["in_stock"] = r % 2 == 0;
  if (r % 8 != 4) {
    nlohmann::json tags = nlohmann::json::array();
    const int64_t n = r == 9 ? 3000 : r % 4;  // row 9: a long list
    for (int64_t i = 0; i < n; ++i) tags.push_back(fmt::format("t{}", (r + i) % 13));
    if (r % 5 == 1) tags.push_back("🏷️ sale");
    p["tags"] = std::move(tags);
  }
  p["other"] = {{"nested", r}};
  return p;
}

// The columns of rows 0..rows-1 (payloads PayloadOf), put in `order` (empty: as added).
FilterColumns ColumnsOf(int64_t rows, std::span<const int64_t> order = {}) {
  FilterColumnsBuilder builder(kAllTypes);
  for (int64_t r = 0; r < rows; ++r) {
    const Status st = builder.AddRow(RecordId(r), PayloadOf(r).dump());
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  return builder.Finish(order);
}

// Row `row` of `column` as the JSON value its payload held (null for a null row).
nlohmann::json ValueAt(const FilterColumn& c, int64_t row) {
  if (!c.IsValid(row)) return nullptr;
  const auto r = static_cast<size_t>(row);
  switch (c.type) {
    case FilterType::kString: return c.dictionary[c.codes[r]];
    case FilterType::kInt: return c.ints[r];
    case FilterType::kDouble: return c.doubles[r];
    case FilterType::kBool: return c.BoolAt(row);
    case FilterType::kStringList: {
      nlohmann::json list = nlohmann::json::array();
      for (uint64_t e = c.offsets[r]; e < c.offsets[r + 1]; ++e) list.push_back(c.dictionary[c.codes[e]]);
      return list;
    }
  }
  return "?";
}

// Every column of `columns` holds, at row i, the payload value of input row order[i].
void ExpectValuesOfPayloads(const FilterColumns& columns, const std::vector<int64_t>& order) {
  ASSERT_EQ(columns.columns.size(), kAllTypes.size());
  for (const FilterColumn& c : columns.columns) {
    ASSERT_EQ(c.rows, static_cast<int64_t>(order.size()));
    int64_t nulls = 0;
    for (int64_t i = 0; i < c.rows; ++i) {
      const nlohmann::json payload = PayloadOf(order[static_cast<size_t>(i)]);
      nlohmann::json want = payload.contains(c.name) ? payload[c.name] : nlohmann::json();
      if (c.type == FilterType::kDouble && want.is_number()) want = want.get<double>();
      if (want.is_null()) ++nulls;
      EXPECT_EQ(ValueAt(c, i), want) << c.name << " row " << i;
    }
    EXPECT_EQ(c.null_count, nulls) << c.name;
    EXPECT_TRUE(std::is_sorted(c.dictionary.begin(), c.dictionary.end())) << c.name;
  }
}

void ExpectSameColumn(const FilterColumn& a, const FilterColumn& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.null_count, b.null_count);
  EXPECT_EQ(a.valid, b.valid);
  EXPECT_EQ(a.ints, b.ints);
  EXPECT_EQ(a.doubles, b.doubles);
  EXPECT_EQ(a.bools, b.bools);
  EXPECT_EQ(a.dictionary, b.dictionary);
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.offsets, b.offsets);
}

FilterColumn RoundTrip(const FilterColumn& c) {
  Result<FilterColumn> back = DecodeFilterColumn(c.name, c.type, c.rows, EncodeFilterColumn(c), "s1");
  EXPECT_TRUE(back.ok()) << back.status().ToString();
  return back.ok() ? *back : FilterColumn{};
}

TEST(FilterColumnsTest, EveryTypeRoundTripsWithNullsUnicodeAndLongLists) {
  const int64_t rows = 200;
  const FilterColumns columns = ColumnsOf(rows);
  std::vector<int64_t> order(rows);
  for (int64_t i = 0; i < rows; ++i) order[static_cast<size_t>(i)] = i;
  ExpectValuesOfPayloads(columns, order);
  for (const FilterColumn& c : columns.columns) {
    EXPECT_GT(c.null_count, 0) << c.name;
    ExpectSameColumn(RoundTrip(c), c);
  }
  const FilterColumn* tags = columns.Find("tags");
  ASSERT_NE(tags, nullptr);
  EXPECT_EQ(tags->offsets[10] - tags->offsets[9], 3000u);  // the long list, whole
  EXPECT_TRUE(tags->CodeOf("🏷️ sale").has_value());
  EXPECT_FALSE(tags->CodeOf("absent").has_value());
  EXPECT_EQ(columns.Find("lang")->CodeOf("en"), 0u);  // "en" sorts before the non-ASCII names
}

TEST(FilterColumnsTest, FinishPutsRowsInTheGivenOrder) {
  const int64_t rows = 97;
  std::vector<int64_t> order;
  for (int64_t i = 0; i < rows; ++i) order.push_back((i * 31) % rows);  // a permutation (97 is prime)
  ExpectValuesOfPayloads(ColumnsOf(rows, order), order);
}

TEST(FilterColumnsTest, EmptyShardAndAllNullColumnsRoundTrip) {
  const FilterColumns empty = FilterColumnsBuilder(kAllTypes).Finish({});
  ASSERT_EQ(empty.columns.size(), kAllTypes.size());
  for (const FilterColumn& c : empty.columns) {
    EXPECT_EQ(c.rows, 0);
    ExpectSameColumn(RoundTrip(c), c);
  }
  FilterColumnsBuilder builder(kAllTypes);
  for (int64_t r = 0; r < 130; ++r) {
    ASSERT_TRUE(builder.AddRow(RecordId(r), r % 2 ? std::optional<std::string>("{\"x\": 1}") : std::nullopt).ok());
  }
  const FilterColumns nulls = builder.Finish({});
  for (const FilterColumn& c : nulls.columns) {
    EXPECT_EQ(c.null_count, 130) << c.name;
    EXPECT_TRUE(c.dictionary.empty());
    ExpectSameColumn(RoundTrip(c), c);
  }
  const nlohmann::json stats = FilterColumnStats(nulls);
  EXPECT_EQ(stats["year"], nlohmann::json({{"nulls", 130}}));  // no min/max without a value
  EXPECT_EQ(stats["lang"], nlohmann::json({{"nulls", 130}, {"distinct", 0}, {"values", nlohmann::json::array()}}));
}

TEST(FilterColumnsTest, ValuesOfAnotherTypeAreRefusedNamingRecordColumnAndValue) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {R"({"year": "abc"})", {"year", "(int)", "\"abc\"", "not an integer"}},
      {R"({"year": 1.5})", {"year", "1.5", "not an integer"}},
      {R"({"year": 2020.0})", {"year", "2020.0", "not an integer"}},
      {R"({"year": 9223372036854775808})", {"year", "9223372036854775808", "signed 64-bit"}},
      {R"({"year": true})", {"year", "true"}},
      {R"({"price": "9.5"})", {"price", "(double)", "\"9.5\"", "not a number"}},
      {R"({"in_stock": 1})", {"in_stock", "(bool)", "1", "not true or false"}},
      {R"({"lang": 7})", {"lang", "(string)", "7", "not a string"}},
      {R"({"lang": ["en"]})", {"lang", "[\"en\"]"}},
      {R"({"tags": ["a", 1]})", {"tags", "(list<string>)", "[\"a\",1]", "element 1 is not a string"}},
      {R"({"tags": ["a", null]})", {"tags", "element 1"}},
      {R"({"tags": "sale"})", {"tags", "\"sale\"", "not a list of strings"}},
  };
  for (const auto& [payload, fragments] : cases) {
    FilterColumnsBuilder builder(kAllTypes);
    const Status st = builder.AddRow(RecordId(std::string("doc-7")), payload);
    ASSERT_EQ(st.code(), StatusCode::kInvalidArgument) << payload;
    EXPECT_NE(st.message().find("record id=doc-7"), std::string::npos) << st.message();
    for (const std::string& f : fragments) EXPECT_NE(st.message().find(f), std::string::npos) << st.message() << " / " << f;
    EXPECT_EQ(builder.rows(), 0) << "a refused row is not added";
  }
  FilterColumnsBuilder builder(kAllTypes);
  EXPECT_EQ(builder.AddRow(RecordId(3), std::string("[1, 2]")).code(), StatusCode::kInvalidArgument);
  // What each type accepts: JSON integers for double, the full signed range for int, null anywhere.
  ASSERT_TRUE(builder.AddRow(RecordId(1), std::string(R"({"price": 3, "year": -9223372036854775808, "lang": null,)"
                                                      R"( "tags": [], "in_stock": false})")).ok());
  ASSERT_TRUE(builder.AddRow(RecordId(2), std::string(R"({"year": 9223372036854775807, "price": 1e300})")).ok());
  const FilterColumns columns = builder.Finish({});
  EXPECT_EQ(columns.Find("price")->doubles, (std::vector<double>{3.0, 1e300}));
  EXPECT_EQ(columns.Find("year")->ints,
            (std::vector<int64_t>{std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}));
  EXPECT_EQ(columns.Find("tags")->null_count, 1);  // [] is a value: an empty list
  EXPECT_EQ(columns.Find("in_stock")->null_count, 1);
}

TEST(FilterColumnsTest, StatisticsSayWhatEachColumnHolds) {
  FilterColumnsBuilder builder(kAllTypes);
  const char* payloads[] = {
      R"({"lang": "en", "year": 2001, "price": 2.5, "in_stock": true, "tags": ["b", "a"]})",
      R"({"lang": "de", "year": -4, "price": 7, "in_stock": true, "tags": []})",
      R"({"lang": "en", "price": -1.25, "in_stock": false, "tags": ["a"]})",
      R"({"year": 2030})",
  };
  for (int64_t r = 0; r < 4; ++r) ASSERT_TRUE(builder.AddRow(RecordId(r), std::string(payloads[r])).ok());
  const nlohmann::json stats = FilterColumnStats(builder.Finish({}));
  EXPECT_EQ(stats["lang"], nlohmann::json::parse(R"({"nulls": 1, "distinct": 2, "values": ["de", "en"]})"));
  EXPECT_EQ(stats["year"], nlohmann::json::parse(R"({"nulls": 1, "min": -4, "max": 2030})"));
  EXPECT_EQ(stats["price"], nlohmann::json::parse(R"({"nulls": 1, "min": -1.25, "max": 7.0})"));
  EXPECT_EQ(stats["in_stock"], nlohmann::json::parse(R"({"nulls": 1, "true": 2, "false": 1})"));
  EXPECT_EQ(stats["tags"], nlohmann::json::parse(R"({"nulls": 1, "empty": 1, "distinct": 2, "values": ["a", "b"]})"));

  FilterColumnsBuilder many({{"lang", FilterType::kString}});
  for (int64_t r = 0; r <= static_cast<int64_t>(kFilterStatsMaxValues); ++r) {
    ASSERT_TRUE(many.AddRow(RecordId(r), fmt::format(R"({{"lang": "l{}"}})", r)).ok());
  }
  EXPECT_EQ(FilterColumnStats(many.Finish({}))["lang"],
            nlohmann::json::parse(fmt::format(R"({{"nulls": 0, "distinct": {}, "many": true}})", kFilterStatsMaxValues + 1)));
  FilterColumnsBuilder long_values({{"lang", FilterType::kString}});  // two strings, more bytes than listed
  for (const char c : {'a', 'b'}) {
    const std::string value(kFilterStatsMaxValueBytes / 2 + 1, c);
    ASSERT_TRUE(long_values.AddRow(RecordId(1), nlohmann::json({{"lang", value}}).dump()).ok());
  }
  EXPECT_EQ(FilterColumnStats(long_values.Finish({}))["lang"],
            nlohmann::json::parse(R"({"nulls": 0, "distinct": 2, "many": true})"));
}

TEST(FilterColumnsTest, SpecsRefuseBadNamesAndTypesNamingThem) {
  auto specs = ParseFilterColumnSpecs({{"year", "int"}, {"Lang_2", "string"}, {"tags", "list<string>"}}, "filter_columns");
  ASSERT_TRUE(specs.ok()) << specs.status().ToString();
  EXPECT_EQ(specs->size(), 3u);
  EXPECT_EQ((*specs)[0], (FilterColumnSpec{"Lang_2", FilterType::kString}));  // name order
  for (const std::string& name : std::vector<std::string>{"1year", "in", "true", "null", "while", "a-b", "a b", "", "é",
                                                          std::string(65, 'a')}) {
    const Status st = ParseFilterColumnSpecs({{name, "int"}}, "filter_columns").status();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << name;
    EXPECT_NE(st.message().find("filter_columns name '" + EscapeForDisplay(name) + "'"), std::string::npos) << st.message();
  }
  for (const std::string type : {"integer", "float", "list", "list<int>", "String", ""}) {
    const Status st = ParseFilterColumnSpecs({{"x", type}}, "filter_columns").status();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << type;
    EXPECT_NE(st.message().find("filter_columns['x'] has type '" + type + "'"), std::string::npos) << st.message();
  }
  std::map<std::string, std::string> too_many;
  for (size_t i = 0; i <= kMaxFilterColumns; ++i) too_many[fmt::format("c{}", i)] = "int";
  EXPECT_EQ(ParseFilterColumnSpecs(too_many, "filter_columns").status().code(), StatusCode::kInvalidArgument);
}

// `blob` decoded as column `c`'s name, type and rows must be Corruption naming the shard, table and column.
void ExpectCorrupt(const FilterColumn& c, const std::string& blob, const std::string& what) {
  const Status st = DecodeFilterColumn(c.name, c.type, c.rows, blob, "s7").status();
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << what;
  EXPECT_NE(st.message().find("shard s7: table shardvec_filter_columns: column '" + c.name + "'"), std::string::npos)
      << what << ": " << st.message();
}

template <typename T>
void Overwrite(std::string* blob, size_t at, T value) {
  std::memcpy(blob->data() + at, &value, sizeof(T));
}

TEST(FilterColumnsTest, CorruptBlobsAreCorruptionNeverACrash) {
  const FilterColumns columns = ColumnsOf(70);  // 70 rows: two bitmap words, bits past the rows
  for (const FilterColumn& c : columns.columns) {
    const std::string good = EncodeFilterColumn(c);
    ExpectCorrupt(c, good.substr(0, good.size() - 1), c.name + " cut by a byte");
    ExpectCorrupt(c, good + "x", c.name + " with a byte more");
    ExpectCorrupt(c, "", c.name + " empty");
    for (size_t cut = 0; cut < good.size(); cut += 7) {  // every prefix fails cleanly
      EXPECT_FALSE(DecodeFilterColumn(c.name, c.type, c.rows, good.substr(0, cut), "s7").ok());
    }
    std::string past = good;
    Overwrite<uint64_t>(&past, 8, uint64_t{1} << 63);  // validity bit of row 127
    ExpectCorrupt(c, past, c.name + " with a bit past the rows");
  }
  const size_t bitmap = 16;  // two validity words
  const FilterColumn& year = *columns.Find("year");
  std::string bad = EncodeFilterColumn(year);
  Overwrite<int64_t>(&bad, bitmap + 8 * 1, 5);  // row 1 is null (1 % 4 == 1)
  ExpectCorrupt(year, bad, "a null int holding a value");
  const FilterColumn& price = *columns.Find("price");
  bad = EncodeFilterColumn(price);
  Overwrite<double>(&bad, bitmap, std::nan(""));
  ExpectCorrupt(price, bad, "a NaN double");
  const FilterColumn& stock = *columns.Find("in_stock");
  bad = EncodeFilterColumn(stock);
  Overwrite<uint64_t>(&bad, bitmap, ~uint64_t{0});
  ExpectCorrupt(stock, bad, "true on null rows");
  const FilterColumn& lang = *columns.Find("lang");
  const std::string lang_blob = EncodeFilterColumn(lang);
  bad = lang_blob;
  Overwrite<uint64_t>(&bad, bitmap, uint64_t{1} << 40);  // a dictionary count far past the blob
  ExpectCorrupt(lang, bad, "a huge dictionary count");
  bad = lang_blob;
  Overwrite<uint32_t>(&bad, bad.size() - 4 * 69 , 9);  // row 1's code (a valid row) past the 3-string dictionary
  ExpectCorrupt(lang, bad, "a code past the dictionary");
  for (const std::vector<std::string>& dictionary : {std::vector<std::string>{"b", "a"}, {"a", "a"}}) {
    FilterColumn unordered{.name = "lang", .type = FilterType::kString, .rows = 1, .null_count = 0, .valid = {1}};
    unordered.dictionary = dictionary;
    unordered.codes = {0};
    ExpectCorrupt(unordered, EncodeFilterColumn(unordered), "a dictionary not strictly ascending");
  }
  bad = lang_blob;
  bad[bitmap + 8 + 8 * lang.dictionary.size()] = static_cast<char>(0xff);
  ExpectCorrupt(lang, bad, "a dictionary string that is not UTF-8");
  const FilterColumn& tags = *columns.Find("tags");
  const size_t offsets = bitmap + 8 + 8 * tags.dictionary.size() +
                         [&] { size_t n = 0; for (const auto& s : tags.dictionary) n += s.size(); return n; }();
  bad = EncodeFilterColumn(tags);
  Overwrite<uint64_t>(&bad, offsets + 8 * 1, 1000000);  // row 1 ends before it starts
  ExpectCorrupt(tags, bad, "list offsets going backwards");
  bad = EncodeFilterColumn(tags);
  Overwrite<uint64_t>(&bad, offsets, 1);
  ExpectCorrupt(tags, bad, "list offsets not starting at 0");
}

constexpr int64_t kDim = 8;

// A shard of `rows` rows whose payloads are PayloadOf(row); id = row.
void BuildShard(const std::filesystem::path& path, int64_t rows, int64_t sublists, bool filters = true) {
  ShardBuildOptions options{.dim = kDim, .metric = Metric::kL2, .sublists = sublists};
  if (filters) options.filter_columns = kAllTypes;
  auto builder = ShardBuilder::Create(path, options);
  ASSERT_TRUE(builder.ok()) << builder.status().ToString();
  const Matrix data = testing::ClusteredMatrix(rows, kDim, 6, 3);
  for (int64_t r = 0; r < rows; ++r) {
    const Status st = (*builder)->Add(RecordId(r), data.row(r), PayloadOf(r).dump());
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  ASSERT_TRUE((*builder)->Seal().ok());
  if (filters) {
    const nlohmann::json stats = nlohmann::json::parse((*builder)->filter_stats_json());
    EXPECT_EQ(stats.size(), kAllTypes.size());
  } else {
    EXPECT_EQ((*builder)->filter_stats_json(), "");
  }
}

// The ids of rowids 0..n-1, read with plain SQLite.
std::vector<int64_t> IdsByRowid(const std::filesystem::path& path) {
  sqlite3* db = testing::OpenWithVec0(path);
  std::vector<int64_t> ids;
  for (const auto& row : testing::QueryRows(db, "SELECT original_id FROM vec_id_map ORDER BY internal_id")) {
    ids.push_back(nlohmann::json::parse(row[0])["v"].get<int64_t>());
  }
  sqlite3_close(db);
  return ids;
}

TEST(FilterColumnsTest, AShardLoadsItsColumnsInTheFinalRowidOrderWithAndWithoutSublists) {
  TempDir dir;
  for (const int64_t sublists : {1, 0}) {
    const auto path = dir / fmt::format("lists{}.db", sublists);
    BuildShard(path, 600, sublists);
    auto searcher = ShardSearcher::Open(path, kDim, Metric::kL2, "s3");
    ASSERT_TRUE(searcher.ok()) << searcher.status().ToString();
    ASSERT_TRUE((*searcher)->uses_scan_kernel());
    ASSERT_EQ((*searcher)->sublists() != nullptr, sublists == 0);
    const FilterColumns* columns = (*searcher)->filter_columns();
    ASSERT_NE(columns, nullptr);
    EXPECT_EQ(columns->rows, 600);
    const std::vector<int64_t> ids = IdsByRowid(path);
    if (sublists == 0) {
      EXPECT_FALSE(std::is_sorted(ids.begin(), ids.end()));  // the builder reordered the rows
    }
    ExpectValuesOfPayloads(*columns, ids);
  }
  const auto plain = dir / "plain.db";
  BuildShard(plain, 50, 1, /*filters=*/false);
  auto searcher = ShardSearcher::Open(plain, kDim, Metric::kL2, "s4");
  ASSERT_TRUE(searcher.ok());
  EXPECT_EQ((*searcher)->filter_columns(), nullptr);
}

TEST(FilterColumnsTest, AShardWhoseTableDisagreesIsCorruptionNamingShardAndTable) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> damage = {
      {"UPDATE shardvec_filter_columns SET rows = 99 WHERE name = 'year'", "has 99 rows but the shard holds 120"},
      {"UPDATE shardvec_filter_columns SET format = 2 WHERE name = 'year'", "format 2"},
      {"UPDATE shardvec_filter_columns SET type = 'float' WHERE name = 'price'", "has type 'float'"},
      {"UPDATE shardvec_filter_columns SET type = 'bool' WHERE name = 'price'", "column 'price' (bool)"},
      {"UPDATE shardvec_filter_columns SET name = 'bad name' WHERE name = 'price'", "'bad name' is not allowed"},
      {"UPDATE shardvec_filter_columns SET data = substr(data, 1, 10) WHERE name = 'tags'", "column 'tags'"},
      {"UPDATE shardvec_filter_columns SET data = 'text' WHERE name = 'tags'", "of the wrong type"},
  };
  int n = 0;
  for (const auto& [sql, fragment] : damage) {
    const auto path = dir / fmt::format("d{}.db", n++);
    BuildShard(path, 120, 1);
    testing::ExecSql(path, sql);
    auto searcher = ShardSearcher::Open(path, kDim, Metric::kL2, "s5");
    ASSERT_FALSE(searcher.ok()) << sql;
    EXPECT_EQ(searcher.status().code(), StatusCode::kCorruption) << sql;
    EXPECT_NE(searcher.status().message().find("shard s5: table shardvec_filter_columns"), std::string::npos)
        << searcher.status().message();
    EXPECT_NE(searcher.status().message().find(fragment), std::string::npos) << searcher.status().message();
  }
}

TEST(FilterColumnsTest, AWrongTypedValueFailsTheShardBuildNamingTheRecord) {
  TempDir dir;
  auto builder = ShardBuilder::Create(dir / "s.db", {.dim = kDim, .metric = Metric::kL2, .sublists = 0,
                                                     .filter_columns = {{"year", FilterType::kInt}}});
  ASSERT_TRUE(builder.ok());
  const std::vector<float> v(kDim, 1.0f);
  ASSERT_TRUE((*builder)->Add(RecordId(1), v.data(), std::string(R"({"year": 3})")).ok());
  const Status st = (*builder)->Add(RecordId(std::string("x9")), v.data(), std::string(R"({"year": "abc"})"));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("record id=x9: filter column 'year' (int): value \"abc\""), std::string::npos)
      << st.message();
}

}  // namespace
}  // namespace shardvec
