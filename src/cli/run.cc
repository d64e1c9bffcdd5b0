// The shardvec command line: global options, the subcommands, and the exit code.
#include "cli/run.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdint>
#include <exception>
#include <limits>
#include <string>

#include "cli/cli_common.h"
#include "cli/commands.h"

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
  RegisterHistoryCommands(app, exit_code);
  RegisterReadCommands(app, exit_code);
  RegisterCopyCommand(app, exit_code);
  RegisterCacheCommands(app, exit_code);
  CheckIntegerOptions(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the usage message
    return kExitUsage;
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
