// The whole command line, parsed and run: main() is only this call, so the CLI11-heavy code
// compiles once into the library (and its precompiled headers).
#pragma once

#include <functional>
#include <memory>

#include "shardvec/object_store.h"

namespace shardvec::cli {

// Wraps the store `build` and `update` opened before they write (a test build's fault-injecting store); the
// shipped CLI passes none.
using StoreWrapper = std::function<std::shared_ptr<ObjectStore>(std::shared_ptr<ObjectStore>)>;

// Parses argv, runs the chosen subcommand and returns the process exit code.
int Run(int argc, char** argv, const StoreWrapper& wrap_build_store = nullptr);

}  // namespace shardvec::cli
