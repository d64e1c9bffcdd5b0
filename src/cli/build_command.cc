// shardvec build: read vectors (+ ids, payloads, shard ids, routing contexts) from files and publish
// a snapshot.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "cli/arrow_input.h"
#include "cli/commands.h"
#include "cli/record_input.h"
#include "shardvec/cel.h"
#include "shardvec/input_files.h"
#include "shardvec/limits.h"
#include "shardvec/status_macros.h"
#include "shardvec/text.h"
#include "shardvec/writer.h"

namespace shardvec::cli {
namespace {

struct BuildArgs {
  std::string store;
  StoreOptions store_options;
  std::string manifest_store;
  std::string input;
  std::optional<std::string> vector_col;  // Parquet/Arrow inputs: the columns (see ArrowInputColumns)
  std::string id_col;
  std::vector<std::string> payload_cols;
  std::string metric;
  std::optional<std::string> quantization;
  std::string strategy;
  std::optional<int64_t> num_dbs;
  bool train_centroids = false;
  std::string centroids_file;
  std::optional<int64_t> sample_size;
  int64_t num_probes = 1;
  int64_t sublists_per_shard = 0;
  std::optional<int64_t> num_hash_bits;
  std::string hyperplanes_file;
  std::string ids_file;
  std::string payloads_file;
  std::string shard_ids_file;
  std::string cel_expr;
  std::vector<std::string> cel_columns;  // NAME=TYPE
  std::vector<std::string> filter_columns;  // NAME=TYPE
  std::string routing_values;            // comma-separated tokens
  std::string routing_values_file;
  std::string routing_context_file;
  std::string run_id;
  std::string local_root;
  std::string shard_prefix = "shards";
  std::string db_path_template = "db={db_id:05d}";
  std::string run_registry_prefix = "runs";
  int64_t parallelism = 0;
  bool last_writer_wins = false;
  bool allow_schema_change = false;
  bool json = false;
  bool quiet = false;
  bool raw_bytes = false;  // --bytes
};

Result<InputData> LoadInputs(const BuildArgs& a) {
  return LoadRecordInput(RecordInputFlags{.input = a.input, .vector_col = a.vector_col, .id_col = a.id_col,
                                          .payload_cols = a.payload_cols, .ids_file = a.ids_file,
                                          .payloads_file = a.payloads_file, .shard_ids_file = a.shard_ids_file,
                                          .routing_context_file = a.routing_context_file});
}

// A repeatable `flag` NAME=TYPE into a map (`example` shows the form); `check_type` refuses a TYPE,
// given what to call it, so the message names the flag. A name declared twice is refused.
Result<std::map<std::string, std::string>> ParseNameTypeFlags(
    const std::vector<std::string>& specs, std::string_view flag, std::string_view example,
    const std::function<Status(const std::string& name, const std::string& type, const std::string& what)>& check_type) {
  std::map<std::string, std::string> columns;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    const std::string name(TrimBlanks(std::string_view(spec).substr(0, eq)));
    if (eq == std::string::npos || name.empty()) {
      return Status::InvalidArgument(fmt::format("{} '{}' must look like NAME=TYPE, e.g. {}", flag, spec, example));
    }
    const std::string type(TrimBlanks(std::string_view(spec).substr(eq + 1)));
    RETURN_IF_ERROR(check_type(name, type, fmt::format("{} '{}': the type", flag, spec)));
    if (!columns.emplace(name, type).second) {
      return Status::InvalidArgument(fmt::format("{} '{}' declares '{}' again (it is already {})", flag, spec,
                                                 name, columns[name]));
    }
  }
  return columns;
}

// --cel-column NAME=TYPE (repeatable) into cel_columns.
Result<std::map<std::string, std::string>> ParseCelColumns(const std::vector<std::string>& specs) {
  return ParseNameTypeFlags(specs, "--cel-column", "region=string",
                            [](const std::string&, const std::string& type, const std::string& what) {
                              return CheckCelColumnType(type, what);
                            });
}

// --filter-column NAME=TYPE (repeatable) into filter_columns.
Result<std::map<std::string, std::string>> ParseFilterColumns(const std::vector<std::string>& specs) {
  return ParseNameTypeFlags(specs, "--filter-column", "year=int",
                            [](const std::string& name, const std::string& type, const std::string&) {
                              return ValidateFilterColumns({{name, type}}, "--filter-column");
                            });
}

// --routing-values "eu,us,apac": tokens typed by the expression's result type (int and uint results:
// integers; string: the text; bytes: the text's UTF-8 bytes).
Result<std::vector<RoutingValue>> ParseRoutingValues(const std::string& text, const std::string& result_type,
                                                     const std::string& expr) {
  if (result_type != "int" && result_type != "uint" && result_type != "string" && result_type != "bytes") {
    return Status::InvalidArgument(fmt::format(
        "--routing-values: --cel-expr '{}' returns {}; routing tokens must be int, uint, string or bytes", expr,
        result_type));
  }
  std::vector<RoutingValue> values;
  size_t start = 0, position = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view token = TrimBlanks(std::string_view(text).substr(start, end - start));
    start = end + 1;
    ++position;
    if (token.empty()) {
      return Status::InvalidArgument(fmt::format(
          "--routing-values '{}' has an empty token at position {} (use --routing-values-file for an empty "
          "string)",
          text, position));
    }
    if (result_type == "string") {
      values.emplace_back(std::string(token));
    } else if (result_type == "bytes") {
      values.emplace_back(Bytes{std::string(token)});
    } else if (const auto i = ParseWhole<int64_t>(token)) {
      values.emplace_back(*i);
    } else if (const auto u = ParseWhole<uint64_t>(token); u && result_type == "uint") {
      values.emplace_back(*u);  // a uint result may name tokens above INT64_MAX
    } else {
      return Status::InvalidArgument(fmt::format(
          "--routing-values token '{}' is not an integer (--cel-expr '{}' returns {}, so every token must be "
          "one)",
          token, expr, result_type));
    }
  }
  return values;
}

// The CEL fields of the sharding config: expression, columns and tokens.
Status SetCelConfig(const BuildArgs& a, ShardingConfig& s) {
  if (a.cel_expr.empty()) return Status::InvalidArgument("--strategy cel needs --cel-expr EXPR");
  if (a.cel_columns.empty()) {
    return Status::InvalidArgument("--strategy cel needs the expression's variables: --cel-column NAME=TYPE");
  }
  ASSIGN_OR_RETURN(s.cel_columns, ParseCelColumns(a.cel_columns));
  s.cel_expr = a.cel_expr;
  if (!a.routing_values_file.empty()) {
    ASSIGN_OR_RETURN(s.routing_values, LoadRoutingValuesFile(a.routing_values_file));
  } else if (!a.routing_values.empty()) {
    ASSIGN_OR_RETURN(const std::string result_type, CelResultType(a.cel_expr, s.cel_columns));
    ASSIGN_OR_RETURN(s.routing_values, ParseRoutingValues(a.routing_values, result_type, a.cel_expr));
  }
  return Status::OK();
}

// What the sharding fields are called here: their flags.
constexpr ShardingFieldNames kShardingFlags{
    .num_dbs = "--num-dbs",
    .num_probes = "--num-probes",
    .centroids = "--centroids",
    .train_centroids = "--train-centroids",
    .sample_size = "--sample-size",
    .num_hash_bits = "--num-hash-bits",
    .hyperplanes = "--hyperplanes",
    .cel_expr = "--cel-expr",
    .cel_columns = "--cel-column",
    .routing_values = "--routing-values",
    .sublists_per_shard = "--sublists-per-shard",
};

// The input flags that cannot take effect: column flags for a file that has no named columns, a
// column given both by a flag and by --id-col/--payload-cols, and standard input ("-") named twice.
Status CheckInputFlags(const BuildArgs& a) {
  if (!IsArrowInputPath(a.input)) {
    std::vector<std::string_view> given;
    if (a.vector_col) given.push_back("--vector-col");
    if (!a.id_col.empty()) given.push_back("--id-col");
    if (!a.payload_cols.empty()) given.push_back("--payload-cols");
    if (!given.empty()) {
      return Status::InvalidArgument(fmt::format(
          "{} {} to Parquet/Arrow inputs only (.parquet, .pq, .arrow, .feather, .ipc; got --input '{}')",
          fmt::join(given, ", "), given.size() == 1 ? "applies" : "apply", EscapeForDisplay(a.input)));
    }
  }
  if (!a.id_col.empty() && !a.ids_file.empty()) {
    return Status::InvalidArgument(fmt::format("--id-col '{}' and --ids '{}' both give the ids; give one",
                                               a.id_col, a.ids_file));
  }
  if (!a.payload_cols.empty() && !a.payloads_file.empty()) {
    return Status::InvalidArgument(fmt::format("--payload-cols and --payloads '{}' both give the payloads; give one",
                                               a.payloads_file));
  }
  std::vector<std::string_view> from_stdin;
  const std::pair<std::string_view, const std::string*> files[] = {
      {"--input", &a.input}, {"--ids", &a.ids_file}, {"--payloads", &a.payloads_file},
      {"--shard-ids", &a.shard_ids_file}, {"--routing-context-file", &a.routing_context_file}};
  for (const auto& [flag, value] : files) {
    if (*value == kStandardInputPath) from_stdin.push_back(flag);
  }
  if (from_stdin.size() > 1) {
    return Status::InvalidArgument(fmt::format("{} all read standard input ('-'); at most one file can come from it",
                                               fmt::join(from_stdin, ", ")));
  }
  return Status::OK();
}

// Flags that --strategy would not use (the CLI-only ones here; the sharding fields through the
// engine's own rule, under their flag names): a usage error, so that no flag is silently dropped.
Status CheckFlagsTakeEffect(const BuildArgs& a, const ShardingConfig& sharding) {
  std::vector<std::string_view> given;
  if (sharding.strategy != Strategy::kCel) {
    if (!a.cel_expr.empty()) given.push_back("--cel-expr");
    if (!a.cel_columns.empty()) given.push_back("--cel-column");
    if (!a.routing_values.empty()) given.push_back("--routing-values");
    if (!a.routing_values_file.empty()) given.push_back("--routing-values-file");
    if (!a.routing_context_file.empty()) given.push_back("--routing-context-file");
  }
  if (!given.empty()) {
    return Status::InvalidArgument(fmt::format("{} {} to --strategy cel only (got --strategy {})",
                                               fmt::join(given, ", "), given.size() == 1 ? "applies" : "apply",
                                               StrategyName(sharding.strategy)));
  }
  if (sharding.strategy != Strategy::kExplicit && !a.shard_ids_file.empty()) {
    return Status::InvalidArgument(fmt::format("--shard-ids applies to --strategy explicit only (got --strategy {})",
                                               StrategyName(sharding.strategy)));
  }
  return CheckShardingFieldsTakeEffect(sharding, kShardingFlags);
}

constexpr LayoutFieldNames kLayoutFlags{"--shard-prefix", "--db-path-template", "--run-registry-prefix"};

// The text flags that end up in the manifest, the run record or messages are UTF-8 (JSON text is).
Status CheckTextFlags(const BuildArgs& a) {
  std::vector<std::pair<std::string_view, std::string_view>> flags = {
      {"--store", a.store},     {"--cel-expr", a.cel_expr}, {"--routing-values", a.routing_values},
      {"--run-id", a.run_id},   {"--local-root", a.local_root},
      {"--shard-prefix", a.shard_prefix}, {"--db-path-template", a.db_path_template},
      {"--run-registry-prefix", a.run_registry_prefix}};
  for (const std::string& column : a.cel_columns) flags.emplace_back("--cel-column", column);
  for (const std::string& column : a.filter_columns) flags.emplace_back("--filter-column", column);
  if (a.vector_col) flags.emplace_back("--vector-col", *a.vector_col);
  flags.emplace_back("--id-col", a.id_col);
  for (const std::string& column : a.payload_cols) flags.emplace_back("--payload-cols", column);
  for (const auto& [flag, value] : flags) RETURN_IF_ERROR(CheckUtf8(value, flag));
  return ValidateLayout(a.shard_prefix, a.db_path_template, a.run_registry_prefix, kLayoutFlags);
}

// The sharding flags as a ShardingConfig (matrix files loaded, CEL tokens typed); needs no input.
Result<ShardingConfig> ShardingFromArgs(const BuildArgs& a) {
  ShardingConfig s;
  ASSIGN_OR_RETURN(s.strategy, ParseStrategy(a.strategy, "--strategy"));
  s.num_dbs = a.num_dbs;
  s.num_probes = a.num_probes;
  s.sublists_per_shard = a.sublists_per_shard;
  s.train_centroids = a.train_centroids;
  if (a.sample_size) s.centroids_training_sample_size = *a.sample_size;
  s.num_hash_bits = a.num_hash_bits;
  if (!a.centroids_file.empty()) {
    ASSIGN_OR_RETURN(s.centroids, LoadMatrixFile(a.centroids_file, "--centroids"));
  }
  if (!a.hyperplanes_file.empty()) {
    ASSIGN_OR_RETURN(s.hyperplanes, LoadMatrixFile(a.hyperplanes_file, "--hyperplanes"));
  }
  if (s.strategy == Strategy::kCel) RETURN_IF_ERROR(SetCelConfig(a, s));
  return s;
}

Result<WriteConfig> MakeConfig(const BuildArgs& a, ShardingConfig sharding, const InputData& data) {
  WriteConfig c;
  c.store = a.store;
  c.store_options = a.store_options;
  c.metrics = CliMetrics();
  ASSIGN_OR_RETURN(c.index.metric, ParseMetric(a.metric, "--metric"));
  c.index.quantization = a.quantization;
  ASSIGN_OR_RETURN(c.filter_columns, ParseFilterColumns(a.filter_columns));
  c.sharding = std::move(sharding);
  c.index.dim = data.vectors.cols;
  if (data.vectors.rows == 0 && c.index.dim == 0) {
    return Status::InvalidArgument(fmt::format("--input '{}' holds no vectors, so the dimension is unknown", a.input));
  }
  if (c.sharding.strategy == Strategy::kExplicit && !data.shard_ids) {
    return Status::InvalidArgument("--strategy explicit needs shard ids: pass --shard-ids F.npy or 'shard_id' in a .jsonl input");
  }
  if (c.sharding.strategy == Strategy::kCel && !data.routing_contexts) {
    return Status::InvalidArgument(
        "--strategy cel needs routing contexts: pass --routing-context-file F.jsonl or 'routing_context' in a "
        ".jsonl input");
  }
  if (!a.run_id.empty()) c.run_id = a.run_id;
  c.local_root = a.local_root;
  c.shard_prefix = a.shard_prefix;
  c.db_path_template = a.db_path_template;
  c.run_registry_prefix = a.run_registry_prefix;
  c.max_parallel_shards = a.parallelism;
  c.publish_policy = a.last_writer_wins ? PublishPolicy::kLastWriterWins : PublishPolicy::kRejectIfNewer;
  c.allow_schema_change = a.allow_schema_change;
  ASSIGN_OR_RETURN(c.manifest_store, OpenCliManifestStore(a.manifest_store));
  return c;
}

void PrintResult(const BuildResult& r, bool json, bool raw_bytes) {
  if (json) {
    nlohmann::json shards = nlohmann::json::array();
    for (const ShardInfo& s : r.shards) {
      shards.push_back({{"db_id", s.db_id}, {"row_count", s.row_count}, {"db_bytes", s.db_bytes}});
    }
    nlohmann::json out = {{"run_id", r.run_id},           {"manifest_ref", r.manifest_ref},
                          {"num_dbs", r.num_dbs},         {"total_vectors", r.total_vectors},
                          {"elapsed_ms", r.elapsed_ms},   {"shards", std::move(shards)}};
    PrintJson(out);
    return;
  }
  int64_t bytes = 0;
  for (const ShardInfo& s : r.shards) bytes += s.db_bytes;
  std::printf("published run %s: %lld vectors in %zu of %lld shards (%s) in %.2f s\n", r.run_id.c_str(),
              static_cast<long long>(r.total_vectors), r.shards.size(), static_cast<long long>(r.num_dbs),
              SizeText(bytes, raw_bytes).c_str(), r.elapsed_ms / 1000.0);
  std::printf("manifest: %s\n", r.manifest_ref.c_str());
}

int RunBuild(const BuildArgs& a, const StoreWrapper& wrap_store) {
  // What the command line alone decides is a usage error (exit 2): text and layout flags, the
  // metric's and the strategy's names.
  if (Status st = CheckTextFlags(a); !st.ok()) return ReportUsageError("build", st.message());
  if (auto metric = ParseMetric(a.metric, "--metric"); !metric.ok()) {
    return ReportUsageError("build", metric.status().message());
  }
  if (auto strategy = ParseStrategy(a.strategy, "--strategy"); !strategy.ok()) {
    return ReportUsageError("build", strategy.status().message());
  }
  if (Status st = ValidateQuantization(a.quantization, "--quantization"); !st.ok()) {
    return ReportUsageError("build", st.message());
  }
  if (auto filter_columns = ParseFilterColumns(a.filter_columns); !filter_columns.ok()) {
    return ReportUsageError("build", filter_columns.status().message());
  }
  auto sharding = ShardingFromArgs(a);
  if (!sharding.ok()) return ReportError("build", sharding.status());
  // A usage error: main prints it with the help hint and exits 2, before any input is read.
  if (Status st = CheckFlagsTakeEffect(a, *sharding); !st.ok()) return ReportUsageError("build", st.message());
  if (Status st = CheckInputFlags(a); !st.ok()) return ReportUsageError("build", st.message());
  auto data = LoadInputs(a);
  if (!data.ok()) return ReportError("build", data.status());
  auto config = MakeConfig(a, std::move(sharding).value(), *data);
  if (!config.ok()) return ReportError("build", config.status());
  ProgressLine progress(!a.quiet && StderrIsTty());
  config->on_progress = [&progress](const WriteProgress& p) {
    // Centroid training reports each k-means iteration and its inertia.
    if (p.inertia) {
      progress.Update("train iteration", p.done, p.total, fmt::format("inertia {:.4g}", *p.inertia));
    } else {
      progress.Update(p.phase, p.done, p.total);
    }
  };
  const InputBatch input(std::move(data).value());
  std::shared_ptr<ObjectStore> store;  // null: WriteSharded opens config->store
  if (wrap_store) {
    auto opened = OpenStore(config->store, config->store_options);
    if (!opened.ok()) return ReportError("build", opened.status());
    store = wrap_store(std::move(opened).value());
  }
  auto result = WriteSharded(*config, input.batch, std::move(store));
  progress.Finish();
  if (!result.ok()) return ReportError("build", result.status());
  PrintResult(*result, a.json, a.raw_bytes);
  return kExitOk;
}

}  // namespace

void RegisterBuildCommand(CLI::App& app, int& exit_code, const StoreWrapper& wrap_store) {
  auto args = std::make_shared<BuildArgs>();
  CLI::App* cmd = app.add_subcommand("build", "Build and publish a snapshot from a vector file");
  AddStoreOption(cmd, args->store, args->store_options);
  AddManifestStoreOption(cmd, args->manifest_store);
  cmd->add_option("--input", args->input,
                  "Vectors: .npy, .fvecs, IDX (.gz), .jsonl records, '-' (standard input: .npy or .jsonl), or "
                  ".parquet / Arrow IPC (.arrow, .feather, .ipc) with --vector-col")->required();
  cmd->add_option("--vector-col", args->vector_col,
                  "Parquet/Arrow: the vector column, a (fixed-size) list of float16/float32/float64 (default: vector)");
  cmd->add_option("--id-col", args->id_col, "Parquet/Arrow: the id column, integers or strings (default: row numbers)");
  cmd->add_option("--payload-cols", args->payload_cols, "Parquet/Arrow: columns that make each row's JSON payload, a,b,c")
      ->delimiter(',');
  cmd->add_option("--metric", args->metric, "Distance metric: l2 or cosine")->required();
  cmd->add_option("--quantization", args->quantization,
                  "int8: also store int8 codes of every row, scanned first and rescored with the float32 rows "
                  "(about +0.25x the vectors' bytes); none: float32 only (default)");
  cmd->add_option("--strategy", args->strategy, "Sharding: cluster, lsh, explicit or cel")->required();
  cmd->add_option("--num-dbs", args->num_dbs, "Number of shards");
  cmd->add_flag("--train-centroids", args->train_centroids, "CLUSTER: train k-means centroids on a sample");
  cmd->add_option("--centroids", args->centroids_file, "CLUSTER: centroids .npy (num_dbs x dim)");
  cmd->add_option("--sample-size", args->sample_size, "CLUSTER training sample size (default 100000)");
  cmd->add_option("--num-probes", args->num_probes, "Default shards probed per query (default 1)");
  cmd->add_option("--sublists-per-shard", args->sublists_per_shard,
                  "Sub-lists inside each shard, scanned nearest first: 0 = auto (about sqrt(rows)), 1 = none (default 0)");
  cmd->add_option("--num-hash-bits", args->num_hash_bits, "LSH hash bits (default 8)");
  cmd->add_option("--hyperplanes", args->hyperplanes_file, "LSH: hyperplanes .npy (bits x dim)");
  cmd->add_option("--ids", args->ids_file, "Ids: .npy integers, or one id per line ('-': standard input)");
  cmd->add_option("--payloads", args->payloads_file,
                  "Payloads: .jsonl, one JSON object (or null) per line ('-': standard input)");
  cmd->add_option("--shard-ids", args->shard_ids_file, "EXPLICIT: shard id per row (.npy or text)");
  cmd->add_option("--cel-expr", args->cel_expr, "CEL: expression over each record's routing_context");
  cmd->add_option("--cel-column", args->cel_columns,
                  "CEL: a variable and its type, NAME=TYPE (int, uint, double, string, bytes, bool); repeatable");
  cmd->add_option("--filter-column", args->filter_columns,
                  "A payload key stored typed in every shard for filtered search, NAME=TYPE (string, int, double, "
                  "bool, list<string>); repeatable");
  CLI::Option* values = cmd->add_option(
      "--routing-values", args->routing_values,
      "CEL categorical: comma-separated tokens, typed by the expression's result; token i is shard i");
  CLI::Option* values_file = cmd->add_option(
      "--routing-values-file", args->routing_values_file,
      "CEL categorical: tokens as a JSON array (ints, strings, {\"__bytes_hex__\": \"..\"})");
  values->excludes(values_file);
  cmd->add_option("--routing-context-file", args->routing_context_file,
                  "CEL: routing context per row (.jsonl, one JSON object per line)");
  cmd->add_option("--run-id", args->run_id, "Run id (default: a random uuid hex)");
  cmd->add_option("--shard-prefix", args->shard_prefix, "Folder of the shards under the store (default: shards)");
  cmd->add_option("--db-path-template", args->db_path_template,
                  "Each shard's folder name, Python format text over {db_id} (default: db={db_id:05d})");
  cmd->add_option("--run-registry-prefix", args->run_registry_prefix,
                  "Folder of the run records under the store (default: runs)");
  cmd->add_option("--local-root", args->local_root, "Local build folder, private to this user (default: ~/.cache/shardvec/build)");
  cmd->add_option("--parallelism", args->parallelism, "Shards built at once, 1..1024 (default: one per usable CPU, plus one)")
      ->check(CLI::Range(int64_t{1}, kMaxPoolThreads));
  cmd->add_flag("--last-writer-wins", args->last_writer_wins,
                "Publish even if _CURRENT moved to a newer snapshot meanwhile");
  cmd->add_flag("--allow-schema-change", args->allow_schema_change,
                "Publish even if the current snapshot has another dim or metric (live readers then refuse to refresh onto it)");
  cmd->add_flag("--json", args->json, "Print the result as one JSON object");
  cmd->add_flag("--quiet", args->quiet, "No progress line");
  AddBytesFlag(cmd, args->raw_bytes);
  cmd->callback([args, &exit_code, wrap_store] { exit_code = RunBuild(*args, wrap_store); });
}

}  // namespace shardvec::cli
