// shardvec: build and serve sharded vector snapshots.
#include "cli/run.h"

int main(int argc, char** argv) { return shardvec::cli::Run(argc, argv); }
