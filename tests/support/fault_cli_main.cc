// shardvec_fault_cli: the shardvec CLI of the test build, for crash-safety tests. With
// SHARDVEC_FAULT_POINT=<point>[:<nth>] (and SHARDVEC_FAULT_ACTION=fail|crash, default crash) set,
// `build` and `update` write through a FaultInjectionStore that fails or kills the process at the nth pass of
// that publish step; otherwise it is the shipped CLI. Only this test program reads those variables.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/run.h"
#include "support/fault_injection_store.h"

int main(int argc, char** argv) {
  const char* point = std::getenv("SHARDVEC_FAULT_POINT");
  if (point == nullptr || *point == '\0') return shardvec::cli::Run(argc, argv);
  const char* action = std::getenv("SHARDVEC_FAULT_ACTION");
  auto hook = shardvec::testing::ParseFault(point, action != nullptr ? action : "crash");
  if (!hook.ok()) {
    std::fprintf(stderr, "shardvec_fault_cli: %s\n", hook.status().ToString().c_str());
    return 2;
  }
  return shardvec::cli::Run(argc, argv, [&hook](std::shared_ptr<shardvec::ObjectStore> store) {
    return std::make_shared<shardvec::testing::FaultInjectionStore>(std::move(store), *hook);
  });
}
