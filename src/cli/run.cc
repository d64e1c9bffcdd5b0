// The shardvec command line: global options, the subcommands, and the exit code.
#include "cli/run.h"

#include <CLI/CLI.hpp>
#include <exception>
#include <string>

#include "cli/cli_common.h"
#include "cli/commands.h"

namespace shardvec::cli {

int Run(int argc, char** argv) {
  CLI::App app{"shardvec: build and serve sharded sqlite-vec vector snapshots"};
  app.set_version_flag("--version", std::string("shardvec ") + SHARDVEC_VERSION);
  app.require_subcommand(1);
  // Global options may also follow the subcommand (shardvec search … --metrics-file m.prom).
  app.fallthrough();
  app.add_option("--metrics-file", MetricsFilePath(),
                 "Write the Prometheus text exposition of this run's metric events to PATH at exit");
  int exit_code = kExitOk;
  RegisterBuildCommand(app, exit_code);
  RegisterHistoryCommands(app, exit_code);
  RegisterReadCommands(app, exit_code);
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
