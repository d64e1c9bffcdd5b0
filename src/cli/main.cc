// shardvec: build and serve sharded vector snapshots.
#include <CLI/CLI.hpp>

#include "cli/cli_common.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"shardvec: build and serve sharded sqlite-vec vector snapshots"};
  app.set_version_flag("--version", std::string("shardvec ") + SHARDVEC_VERSION);
  app.require_subcommand(1);
  // Global options may also follow the subcommand (shardvec search … --metrics-file m.prom).
  app.fallthrough();
  app.add_option("--metrics-file", shardvec::cli::MetricsFilePath(),
                 "Write the Prometheus text exposition of this run's metric events to PATH at exit");
  int exit_code = shardvec::cli::kExitOk;
  shardvec::cli::RegisterBuildCommand(app, exit_code);
  shardvec::cli::RegisterHistoryCommands(app, exit_code);
  shardvec::cli::RegisterReadCommands(app, exit_code);
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
    return shardvec::cli::kExitUsage;
  }
  if (shardvec::Status st = shardvec::cli::WriteMetricsFile(); !st.ok()) {
    shardvec::cli::ReportError(app.get_subcommands().front()->get_name(), st);
    if (exit_code == shardvec::cli::kExitOk) exit_code = shardvec::cli::kExitError;
  }
  return exit_code;
}
