// The shardvec command line: global options, the subcommands, and the exit code.
#include "cli/run.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdint>
#include <algorithm>
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/completion.h"
#include "cli/suggest.h"

namespace shardvec::cli {
namespace {

// CLI11 saturates a number too large for an integer flag (99999999999999999999 became INT64_MAX,
// then refused or used as that), so every integer option, in every subcommand, first checks the text
// typed: an error names the flag and that text (exit 2).
template <typename T>
CLI::Validator WholeNumber() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (ParseWhole<T>(TrimBlanks(text))) return {};
        return fmt::format("'{}' is not a whole number in {}..{}", text, std::numeric_limits<T>::min(),
                           std::numeric_limits<T>::max());
      },
      "");
}

void CheckIntegerOptions(CLI::App& app) {
  for (CLI::Option* option : app.get_options()) {
    const std::string type = option->get_type_name();
    if (type == "INT") option->check(WholeNumber<int64_t>());
    if (type == "UINT") option->check(WholeNumber<uint64_t>());
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) CheckIntegerOptions(*sub);
}

// The global options (those of `app` but --help and --version) in every subcommand's --help, since
// they are accepted after the subcommand too.
void ListGlobalOptions(CLI::App& app) {
  std::string text = "Global options (before or after the subcommand):";
  for (const CLI::Option* option : app.get_options()) {
    if (option == app.get_help_ptr() || option == app.get_version_ptr()) continue;
    text += fmt::format("\n  {:<28}{}", option->get_name() + " " + option->get_type_name(), option->get_description());
  }
  const auto all = [](CLI::App*) { return true; };
  std::vector<CLI::App*> pending = app.get_subcommands(all);
  while (!pending.empty()) {
    CLI::App* sub = pending.back();
    pending.pop_back();
    sub->footer(text);
    for (CLI::App* inner : sub->get_subcommands(all)) pending.push_back(inner);
  }
}

// --json anywhere before "--": errors, usage errors included, go to stderr as JSON.
bool JsonOnCommandLine(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (arg == "--json" || arg.starts_with("--json=")) return true;
  }
  return false;
}

// A usage error: an unknown subcommand or flag is named with the nearest valid names; any other is
// CLI11's message (text: with the usage hint, as CLI11 prints it). Exit 2 either way.
int ReportParseError(const CLI::App& app, const CLI::ParseError& error, const std::vector<std::string>& args) {
  if (const std::optional<UnknownName> unknown = FindUnknownName(app, args)) {
    return ReportUsageError(unknown->command, UnknownNameMessage(*unknown));
  }
  if (JsonErrors()) return ReportUsageError(CommandPath(app, args), error.what());
  app.exit(error);
  return kExitUsage;
}

}  // namespace

int Run(int argc, char** argv, const StoreWrapper& wrap_build_store) {
  CLI::App app{"shardvec: build and serve sharded sqlite-vec vector snapshots"};
  app.set_version_flag("--version", std::string("shardvec ") + SHARDVEC_VERSION);
  app.require_subcommand(1);
  // Global options may also follow the subcommand (shardvec search … --metrics-file m.prom).
  app.fallthrough();
  app.add_option("--metrics-file", MetricsFilePath(),
                 "Write the Prometheus text exposition of this run's metric events to PATH at exit");
  int exit_code = kExitOk;
  RegisterBuildCommand(app, exit_code, wrap_build_store);
  RegisterUpdateCommand(app, exit_code, wrap_build_store);
  RegisterHistoryCommands(app, exit_code);
  RegisterReadCommands(app, exit_code);
  RegisterCopyCommand(app, exit_code);
  RegisterServeCommand(app, exit_code);
  RegisterCacheCommands(app, exit_code);
  RegisterCompletionCommand(app, exit_code);
  CheckIntegerOptions(app);
  ListGlobalOptions(app);
  const std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
  JsonErrors() = JsonOnCommandLine(args);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return ReportParseError(app, e, args);
  } catch (const std::exception& e) {
    // A subcommand reports its errors as Status values; anything thrown past it is a bug, still
    // reported as exit 1 with a message rather than std::terminate.
    const auto& called = app.get_subcommands();
    return ReportError(called.empty() ? "" : called.front()->get_name(),
                       shardvec::Status::Internal(std::string("unexpected exception: ") + e.what()));
  }
  if (shardvec::Status st = WriteMetricsFile(); !st.ok()) {
    ReportError(app.get_subcommands().front()->get_name(), st);
    if (exit_code == kExitOk) exit_code = kExitError;
  }
  return exit_code;
}

}  // namespace shardvec::cli
