// The whole command line, parsed and run: main() is only this call, so the CLI11-heavy code
// compiles once into the library (and its precompiled headers).
#pragma once

namespace shardvec::cli {

// Parses argv, runs the chosen subcommand and returns the process exit code.
int Run(int argc, char** argv);

}  // namespace shardvec::cli
