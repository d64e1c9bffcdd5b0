// CLI manners, run as a child process: "did you mean" for mistyped names, exit 2 for every usage
// error (a table over subcommands and kinds of usage error), errors as JSON with --json, the global
// flags in every subcommand's help, search --json naming the query row and the shards probed, sizes
// in IEC units (--bytes for whole numbers), rollback to the current snapshot, the progress line
// during centroid training, and the generated completion scripts.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunCli;
using testing::RunCommand;
using testing::ShellQuote;

class MannersCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = testing::ClusteredMatrix(300, 6, 4, 23);
    testing::WriteNpy(tmp_ / "v.npy", data_);
  }
  std::string Path(const std::string& name) const { return ShellQuote((tmp_ / name).string()); }
  std::string Store() const { return " --store " + Path("store"); }
  std::string Build(const std::string& run_id, const std::string& extra = "") const {
    return "build --quiet" + Store() + " --local-root " + Path("lr") + " --input " + Path("v.npy") +
           " --metric l2 --strategy cluster --num-dbs 4 --train-centroids --run-id " + run_id + extra;
  }
  Matrix data_;
  testing::TempDir tmp_;
};

// ---- did you mean ------------------------------------------------------------------------------

TEST_F(MannersCliTest, AMistypedSubcommandOrFlagIsNamedWithTheNearestValidNameExitTwo) {
  struct Case {
    std::string args;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"serach --store s --query 1", "'serach' is not a shardvec subcommand; did you mean 'search'?"},
      {"histroy --store s", "did you mean 'history'?"},
      {"biuld --store s", "did you mean 'build'?"},
      {"search --store s --query 1 --num-probe 3", "unknown flag '--num-probe'; did you mean '--num-probes'?"},
      {"search --store s --query 1 --top_k 3", "did you mean '--top-k'?"},
      {"search --store s --query 1 --metrics-fil m.prom", "did you mean '--metrics-file'?"},
      {"cache lss --cache-dir c", "'lss' is not a 'cache' subcommand; did you mean 'ls'?"},
      {"cache prune --cache-dir c --max-byte 5", "did you mean '--max-bytes'?"},
      {"copy a b --all-histroy", "did you mean '--all-history'?"},
  };
  for (const Case& tc : cases) {
    auto r = RunCli(tc.args);
    EXPECT_EQ(r.exit_code, 2) << tc.args << "\n" << r.err;
    EXPECT_NE(r.err.find(tc.expect), std::string::npos) << tc.args << "\nstderr: " << r.err;
    EXPECT_TRUE(r.out.empty()) << tc.args;
  }
  // Far from every name: named, with no guess.
  for (const std::string args : {"frobnicate --store s", "search --store s --query 1 --zzzzzzzz"}) {
    auto r = RunCli(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_EQ(r.err.find("did you mean"), std::string::npos) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(args.starts_with("frob") ? "'frobnicate' is not a shardvec subcommand" : "'--zzzzzzzz'"),
              std::string::npos)
        << r.err;
  }
  EXPECT_FALSE(fs::exists(tmp_ / "s"));
}

// ---- exit code 2 for every usage error ---------------------------------------------------------

struct UsageCase {
  std::string kind;
  std::string args;     // after "shardvec "
  std::string expect;   // a fragment of the message
};

// Every subcommand, each kind of usage error it can have. Paths are relative to a temporary folder
// nothing is written to.
std::vector<UsageCase> UsageCases() {
  const std::string build = "build --store st --input v.npy --metric l2 --strategy lsh --num-dbs 2";
  const std::string q = " --store st --query 1,2";
  return {
      {"missing required flag", "build --store st --metric l2 --strategy lsh", "--input is required"},
      {"bad value", build + " --num-dbs x", "--num-dbs"},
      {"bad value", "build --store st --input v.npy --metric dot --strategy lsh --num-dbs 2", "--metric 'dot'"},
      {"unknown flag", build + " --nmu-dbs 2", "--nmu-dbs"},
      {"extra positional", build + " extra", "extra"},
      {"mutually exclusive", build + " --routing-values a --routing-values-file f.json", "--routing-values"},
      {"bad combination", build + " --train-centroids", "--train-centroids"},
      {"missing required flag", "history", "--store is required"},
      {"bad value", "history --store st --limit 0", "--limit must be >= 1"},
      {"bad value", "history --store st --limit many", "--limit"},
      {"unknown flag", "history --store st --limt 3", "did you mean '--limit'"},
      {"extra positional", "history --store st extra", "extra"},
      {"missing required flag", "rollback --store st", "Exactly one of --ref, --run-id, or --offset"},
      {"mutually exclusive", "rollback --store st --run-id a --offset 1", "Exactly one of"},
      {"bad value", "rollback --store st --offset x", "--offset"},
      {"missing required flag", "cleanup --keep-last 1", "--store is required"},
      {"bad value", "cleanup --store st --older-than 7x", "--older-than '7x'"},
      {"bad value", "cleanup --store st --keep-last 0", "--keep-last must be >= 1"},
      {"extra positional", "cleanup --store st extra", "extra"},
      {"missing required flag", "search --query 1,2", "--store is required"},
      {"missing required flag", "search --store st", "one of --query or --query-file is required"},
      {"bad value", "search" + q + " --top-k x", "--top-k"},
      {"bad value", "search --store st --query 1,x", "'x' is not one"},
      {"bad value", "search" + q + " --rate-limit fast", "--rate-limit"},
      {"bad value", "search" + q + " --max-workers 0", "--max-workers"},
      {"bad value", "search" + q + " --reader-mode x --cache-max-bytes -1", "--cache-max-bytes"},
      {"mutually exclusive", "search" + q + " --query-file q.npy", "give either --query or --query-file"},
      {"mutually exclusive", "search" + q + " --shard-ids 0 --num-probes 2", "--shard-ids"},
      {"mutually exclusive", "search" + q + " --run-id a --offset 1", "--run-id"},
      {"bad combination", "search" + q + " --endpoint-url http://127.0.0.1:9", "--endpoint-url"},
      {"extra positional", "search" + q + " extra", "extra"},
      {"missing required flag", "info", "--store is required"},
      {"mutually exclusive", "info --store st --ref a --offset 1", "--ref"},
      {"missing required flag", "shards", "--store is required"},
      {"bad value", "shards --store st --offset -1", "--offset"},
      {"missing required flag", "route --store st", "one of --query or --query-file is required"},
      {"bad value", "health --store st --staleness soon", "--staleness 'soon'"},
      {"bad value", "health --store st --max-workers 0", "--max-workers"},
      {"missing required flag", "verify", "--store is required"},
      {"bad value", "verify --store st --sample 0", "--sample"},
      {"bad combination", "verify --store st --seed 3", "--sample"},
      {"missing required flag", "copy src", "DST is required"},
      {"mutually exclusive", "copy src dst --snapshot r --all-history", "--all-history"},
      {"extra positional", "copy src dst more", "more"},
      {"missing required flag", "cache ls", "--cache-dir is required"},
      {"missing required flag", "cache prune --cache-dir c", "give --max-bytes N or --all"},
      {"mutually exclusive", "cache prune --cache-dir c --all --max-bytes 5", "--all"},
      {"bad value", "cache prune --cache-dir c --max-bytes -5", "--max-bytes"},
      {"missing required flag", "cache", "A subcommand is required"},
      {"bad value", "completion tcsh", "tcsh"},
      {"missing required flag", "completion", "SHELL is required"},
      {"missing required flag", "update --delete ids.txt", "--store is required"},
      {"missing required flag", "update --store st", "give --upsert FILE, --delete IDS_FILE, or both"},
      {"bad value", "update --store st --delete ids.txt --sublists-per-shard x", "--sublists-per-shard"},
      {"missing required flag", "serve --port 0", "--store is required"},
      {"bad value", "serve --store st --port x", "--port"},
      {"bad value", "serve --store st --max-concurrency 0", "--max-concurrency"},
      {"missing required flag", "", "A subcommand is required"},
  };
}

TEST_F(MannersCliTest, EveryUsageErrorOfEverySubcommandExitsTwoNamingIt) {
  for (const UsageCase& tc : UsageCases()) {
    auto r = RunCommand("cd " + ShellQuote(tmp_.path().string()) + " && " + ShellQuote(SHARDVEC_CLI_PATH) + " " +
                        tc.args);
    EXPECT_EQ(r.exit_code, 2) << tc.kind << ": " << tc.args << "\n" << r.err;
    EXPECT_NE(r.err.find(tc.expect), std::string::npos) << tc.kind << ": " << tc.args << "\nstderr: " << r.err;
  }
  EXPECT_EQ(testing::ListFiles(tmp_.path()), std::vector<std::string>{"v.npy"}) << "a usage error wrote something";
}

TEST_F(MannersCliTest, WithJsonEveryUsageErrorIsOneJsonObjectOnStderr) {
  for (const UsageCase& tc : UsageCases()) {
    // No --json there (serve prints no JSON of its own on the command line).
    if (tc.args.empty() || tc.args == "cache" || tc.args.starts_with("completion") || tc.args.starts_with("serve")) {
      continue;
    }
    auto r = RunCommand("cd " + ShellQuote(tmp_.path().string()) + " && " + ShellQuote(SHARDVEC_CLI_PATH) + " " +
                        tc.args + " --json");
    EXPECT_EQ(r.exit_code, 2) << tc.args << "\n" << r.err;
    const json err = json::parse(r.err, nullptr, false);
    ASSERT_FALSE(err.is_discarded()) << tc.args << "\nstderr is not one JSON object: " << r.err;
    EXPECT_EQ(err["error"]["code"], "Usage") << tc.args;
    EXPECT_EQ(err["error"]["kind"], "Usage") << tc.args;
    EXPECT_EQ(err["error"]["exit_code"], 2) << tc.args;
    EXPECT_NE(err["error"]["message"].get<std::string>().find(tc.expect), std::string::npos) << tc.args << "\n" << r.err;
    const std::string command = tc.args.substr(0, tc.args.find(' '));
    EXPECT_TRUE(err["error"]["command"].get<std::string>().starts_with(command)) << tc.args << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << tc.args;
  }
}

TEST_F(MannersCliTest, WithJsonARuntimeErrorIsOneJsonObjectWithItsCodeAndKind) {
  auto r = RunCli("search" + Store() + " --query 1,2 --json");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const json err = json::parse(r.err, nullptr, false);
  ASSERT_FALSE(err.is_discarded()) << r.err;
  EXPECT_EQ(err["error"]["code"], "NotFound");
  EXPECT_EQ(err["error"]["kind"], "NoCurrentPointer");
  EXPECT_EQ(err["error"]["command"], "search");
  EXPECT_EQ(err["error"]["exit_code"], 1);
  EXPECT_NE(err["error"]["message"].get<std::string>().find("CURRENT"), std::string::npos) << r.err;
  // Without --json: the text form.
  auto text = RunCli("search" + Store() + " --query 1,2");
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_TRUE(text.err.starts_with("shardvec search: error: ")) << text.err;
  EXPECT_FALSE(fs::exists(tmp_ / "store"));
}

// ---- global flags in every subcommand's help ---------------------------------------------------

TEST_F(MannersCliTest, EverySubcommandsHelpListsTheGlobalFlags) {
  for (const std::string command : {"build", "history", "rollback", "cleanup", "search", "info", "shards", "route",
                                    "health", "verify", "copy", "cache", "cache ls", "cache prune", "completion",
                                    "serve", "update"}) {
    auto r = RunCli(command + " --help");
    EXPECT_EQ(r.exit_code, 0) << command << "\n" << r.err;
    EXPECT_NE(r.out.find("Global options"), std::string::npos) << command << "\n" << r.out;
    EXPECT_NE(r.out.find("--metrics-file"), std::string::npos) << command << "\n" << r.out;
  }
}

// ---- search --json: the query row and the shards probed ----------------------------------------

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

TEST_F(MannersCliTest, SearchJsonLinesCarryTheQueryRowAndTheShardsProbed) {
  ASSERT_EQ(RunCli(Build("R1")).exit_code, 0);
  Matrix queries{3, 6, {}};
  for (int64_t i : {5, 150, 290}) queries.data.insert(queries.data.end(), data_.row(i), data_.row(i) + 6);
  testing::WriteNpy(tmp_ / "q.npy", queries);
  const std::string read = Store() + " --cache-dir " + Path("cache") + " --query-file " + Path("q.npy");
  for (const std::string extra : {" --num-probes 2", " --num-probes 2 --rate-limit 1000"}) {
    auto r = RunCli("search" + read + " --top-k 2 --json" + extra);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto routed = RunCli("route" + read + " --num-probes 2 --json");
    ASSERT_EQ(routed.exit_code, 0) << routed.err;
    const std::vector<json> lines = JsonLines(r.out), routes = JsonLines(routed.out);
    ASSERT_EQ(lines.size(), 3u) << r.out;
    ASSERT_EQ(routes.size(), 3u) << routed.out;
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(lines[i]["query"], i) << extra;
      EXPECT_EQ(lines[i]["shards"], routes[i]["shard_ids"]) << extra << " query " << i;
      EXPECT_EQ(lines[i]["shards"].size(), lines[i]["num_shards_queried"].get<size_t>());
    }
  }
  auto one = RunCli("search" + Store() + " --cache-dir " + Path("cache") + " --query 0,0,0,0,0,0 --shard-ids 3,1 --json");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const json line = json::parse(one.out);
  EXPECT_EQ(line["query"], 0);
  EXPECT_EQ(line["shards"], json::array({3, 1})) << one.out;
}

// ---- sizes -------------------------------------------------------------------------------------

TEST_F(MannersCliTest, SizesPrintInIecUnitsAndAsWholeBytesWithTheBytesFlag) {
  auto built = RunCli(Build("R1", " --json"));
  ASSERT_EQ(built.exit_code, 0) << built.err;
  int64_t total = 0;
  const json result = json::parse(built.out);
  for (const json& s : result["shards"]) total += s["db_bytes"].get<int64_t>();
  ASSERT_GT(total, 1024);
  const std::regex iec(R"(\d+\.\d (KiB|MiB))");

  auto text = RunCli(Build("R2"));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(std::regex_search(text.out, std::regex(R"(shards \(\d+\.\d (KiB|MiB)\) in)"))) << text.out;
  auto raw = RunCli(Build("R3", " --bytes"));
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_NE(raw.out.find("(" + std::to_string(total) + " bytes)"), std::string::npos) << raw.out;

  const std::string read = "shards" + Store() + " --cache-dir " + Path("cache");
  auto shards = RunCli(read);
  ASSERT_EQ(shards.exit_code, 0) << shards.err;
  EXPECT_TRUE(std::regex_search(shards.out, iec)) << shards.out;
  auto shards_raw = RunCli(read + " --bytes");
  ASSERT_EQ(shards_raw.exit_code, 0) << shards_raw.err;
  EXPECT_NE(shards_raw.out.find(" bytes"), std::string::npos) << shards_raw.out;
  EXPECT_FALSE(std::regex_search(shards_raw.out, iec)) << shards_raw.out;

  const std::string cleanup = "cleanup" + Store() + " --dry-run --keep-last 1";
  auto plan = RunCli(cleanup + " --json");
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  const int64_t freed = json::parse(plan.out)["bytes"].get<int64_t>();
  ASSERT_GT(freed, 1024);
  auto plan_text = RunCli(cleanup);
  EXPECT_TRUE(std::regex_search(plan_text.out, std::regex(R"(objects \(\d+\.\d (KiB|MiB)\))"))) << plan_text.out;
  auto plan_raw = RunCli(cleanup + " --bytes");
  EXPECT_NE(plan_raw.out.find("(" + std::to_string(freed) + " bytes)"), std::string::npos) << plan_raw.out;

  auto copied = RunCli("copy " + Path("store") + " " + Path("copy"));
  ASSERT_EQ(copied.exit_code, 0) << copied.err;
  EXPECT_TRUE(std::regex_search(copied.out, std::regex(R"(copied \d+ objects \(\d+(\.\d (KiB|MiB)| B)\))"))) << copied.out;
  auto recopied = RunCli("copy " + Path("store") + " " + Path("copy") + " --bytes");
  ASSERT_EQ(recopied.exit_code, 0) << recopied.err;
  EXPECT_TRUE(std::regex_search(recopied.out, std::regex(R"(already there \(\d+ bytes\))"))) << recopied.out;
}

// ---- rollback to the current snapshot ----------------------------------------------------------

TEST_F(MannersCliTest, RollbackToTheCurrentSnapshotSaysSoAndWritesNothing) {
  ASSERT_EQ(RunCli(Build("R1")).exit_code, 0);
  ASSERT_EQ(RunCli(Build("R2")).exit_code, 0);
  const std::string before = testing::ReadText(tmp_ / "store" / "_CURRENT");
  const std::vector<std::string> files = testing::ListFiles(tmp_ / "store");
  for (const std::string target : {"--run-id R2", "--offset 0"}) {
    auto r = RunCli("rollback" + Store() + " " + target);
    EXPECT_EQ(r.exit_code, 0) << target << "\n" << r.err;
    EXPECT_TRUE(r.out.starts_with("already current: R2")) << target << "\n" << r.out;
    auto j = RunCli("rollback" + Store() + " " + target + " --json");
    ASSERT_EQ(j.exit_code, 0) << j.err;
    EXPECT_EQ(json::parse(j.out)["already_current"], true) << j.out;
    EXPECT_EQ(json::parse(j.out)["run_id"], "R2") << j.out;
    EXPECT_EQ(testing::ReadText(tmp_ / "store" / "_CURRENT"), before) << target;
    EXPECT_EQ(testing::ListFiles(tmp_ / "store"), files) << target << ": a marker or pointer was written";
  }
  // An earlier snapshot still moves _CURRENT, and says it is not already current.
  auto moved = RunCli("rollback" + Store() + " --run-id R1 --json");
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_EQ(json::parse(moved.out)["already_current"], false);
  EXPECT_NE(testing::ReadText(tmp_ / "store" / "_CURRENT"), before);
}

// ---- the progress line during centroid training ------------------------------------------------

TEST_F(MannersCliTest, TheProgressLineShowsEachTrainingIterationAndItsInertiaOnATerminal) {
  if (RunCommand("command -v script").exit_code != 0) GTEST_SKIP() << "script(1) is not installed";
  // The build without --quiet; script(1) gives it a terminal, and its output is what the terminal showed.
  const auto command = [this](const std::string& run_id) {
    return "build" + Build(run_id).substr(std::string("build --quiet").size());
  };
  const auto on_terminal = [](const std::string& args) {
    return RunCommand("script -qec " + ShellQuote(ShellQuote(SHARDVEC_CLI_PATH) + " " + args) + " /dev/null");
  };
  auto tty = on_terminal(command("R1"));
  ASSERT_EQ(tty.exit_code, 0) << tty.out << tty.err;
  // The first iteration always shows (a new phase is drawn at once), later ones at most ten times a second.
  EXPECT_TRUE(std::regex_search(tty.out, std::regex(R"(train iteration: 1, inertia \d)"))) << tty.out;
  // --quiet, or not a terminal: no progress line at all.
  auto quiet = on_terminal(command("R2") + " --quiet");
  ASSERT_EQ(quiet.exit_code, 0) << quiet.out;
  EXPECT_EQ(quiet.out.find("train iteration"), std::string::npos) << quiet.out;
  auto piped = RunCli(command("R3"));
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.err.find("train"), std::string::npos) << piped.err;
}

// ---- completion scripts ------------------------------------------------------------------------

// What the bash completion offers after `words` (the last one being completed).
std::string BashCompletes(const std::string& words) {
  const std::string script = "source <(" + ShellQuote(SHARDVEC_CLI_PATH) + " completion bash) && COMP_WORDS=(" + words +
                             ") && COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) && _shardvec && echo \"${COMPREPLY[*]}\"";
  return RunCommand("bash -c " + ShellQuote(script)).out;
}

TEST_F(MannersCliTest, TheBashCompletionScriptRegistersAndCompletesSubcommandsAndTheirFlags) {
  auto r = RunCommand("bash -c " + ShellQuote("source <(" + ShellQuote(SHARDVEC_CLI_PATH) +
                                              " completion bash) && complete -p shardvec"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("-F _shardvec shardvec"), std::string::npos) << r.out;
  EXPECT_EQ(BashCompletes("shardvec sea"), "search\n");
  EXPECT_EQ(BashCompletes("shardvec search --store s --num-p"), "--num-probes\n");
  EXPECT_EQ(BashCompletes("shardvec cache p"), "prune\n");
  EXPECT_EQ(BashCompletes("shardvec cache prune --max-"), "--max-bytes\n");
  EXPECT_EQ(BashCompletes("shardvec info --metrics-f"), "--metrics-file\n");
  EXPECT_EQ(BashCompletes("shardvec completion z"), "zsh\n");
  // Every subcommand is offered at the start.
  std::string all = " " + BashCompletes("shardvec ''");
  std::replace(all.begin(), all.end(), '\n', ' ');
  for (const std::string sub : {"build", "history", "rollback", "cleanup", "search", "info", "shards", "route", "health",
                                "verify", "copy", "cache", "completion", "serve", "update"}) {
    EXPECT_NE(all.find(" " + sub + " "), std::string::npos) << sub << " in" << all;
  }
}

TEST_F(MannersCliTest, TheZshAndFishScriptsParseAndNameEverySubcommand) {
  for (const std::string shell : {"zsh", "fish"}) {
    auto r = RunCli("completion " + shell);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(shell == "zsh" ? "compdef _shardvec shardvec" : "complete -c shardvec"), std::string::npos);
    for (const std::string name : {"search", "--num-probes", "prune", "--max-bytes", "--metrics-file"}) {
      EXPECT_NE(r.out.find(shell == "fish" && name.starts_with("--") ? "-l " + name.substr(2) : name),
                std::string::npos)
          << shell << ": " << name;
    }
    if (RunCommand("command -v " + shell).exit_code != 0) continue;  // the syntax check needs the shell
    testing::WriteText(tmp_ / ("c." + shell), r.out);
    auto parsed = RunCommand(shell + " -n " + Path("c." + shell));
    EXPECT_EQ(parsed.exit_code, 0) << shell << ": " << parsed.err;
  }
}

}  // namespace
}  // namespace shardvec
