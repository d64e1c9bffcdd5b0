// Placeholder until history, rollback and cleanup land.
#include "cli/commands.h"

namespace shardvec::cli {

void RegisterHistoryCommands(CLI::App&, int&) {}

}  // namespace shardvec::cli
