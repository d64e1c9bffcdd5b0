// How many CPUs this process may actually use, for sizing thread pools.
#pragma once

#include <optional>
#include <string_view>

namespace shardvec {

// CPUs in this process's affinity mask (taskset, cpusets, a Spark or Ray worker pinned to some
// cores), capped by its cgroup v2 CPU quota (Docker --cpus, Kubernetes CPU limits). At least 1.
// std::thread::hardware_concurrency() counts every CPU of the machine instead, so a build pinned to
// one core would run a thread per machine CPU on it.
int UsableCpus();

// CPUs a cgroup v2 `cpu.max` text ("<quota> <period>" or "max <period>") allows, rounded up;
// nullopt when it sets no limit or does not parse.
std::optional<int> CpusFromCgroupQuota(std::string_view cpu_max);

}  // namespace shardvec
