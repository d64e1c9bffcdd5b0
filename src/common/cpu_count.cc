#include "common/cpu_count.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <string>
#include <thread>

namespace shardvec {
namespace {

std::optional<long long> ParseCount(std::string_view text) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value <= 0) return std::nullopt;
  return value;
}

int AffinityCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  // Only fails with more CPUs than a cpu_set_t holds (1024); then the machine's count is the best.
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// The cpu.max of this process's own cgroup ("0::/path" in /proc/self/cgroup), when cgroup v2.
std::optional<int> CgroupCpus() {
  std::ifstream groups("/proc/self/cgroup");
  std::string line;
  while (std::getline(groups, line)) {
    if (line.rfind("0::", 0) != 0) continue;
    std::ifstream max_file("/sys/fs/cgroup" + line.substr(3) + "/cpu.max");
    std::string cpu_max;
    if (!std::getline(max_file, cpu_max)) return std::nullopt;
    return CpusFromCgroupQuota(cpu_max);
  }
  return std::nullopt;
}

}  // namespace

std::optional<int> CpusFromCgroupQuota(std::string_view cpu_max) {
  const size_t space = cpu_max.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::optional<long long> quota = ParseCount(cpu_max.substr(0, space));
  const std::optional<long long> period = ParseCount(cpu_max.substr(space + 1));
  if (!quota || !period) return std::nullopt;  // "max": no limit
  return static_cast<int>(std::min<long long>((*quota + *period - 1) / *period, 1 << 20));
}

int UsableCpus() {
  const int affinity = AffinityCpus();
  const std::optional<int> quota = CgroupCpus();
  return quota ? std::max(1, std::min(affinity, *quota)) : affinity;
}

}  // namespace shardvec
