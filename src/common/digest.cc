#include "common/digest.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace shardvec {

uint64_t Xxh3_64(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

std::string Xxh3Digest(std::string_view bytes) { return fmt::format("xxh3:{:016x}", Xxh3_64(bytes)); }

Result<FileDigest> DigestFile(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::IOError(fmt::format("cannot open '{}': {}", path.string(), std::strerror(errno)));
  }
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), XXH3_freeState);
  XXH3_64bits_reset(state.get());
  std::vector<char> buf(1 << 20);
  int64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Status::IOError(fmt::format("cannot read '{}': {}", path.string(), std::strerror(err)));
    }
    if (n == 0) break;
    XXH3_64bits_update(state.get(), buf.data(), static_cast<size_t>(n));
    total += n;
  }
  ::close(fd);
  return FileDigest{fmt::format("xxh3:{:016x}", XXH3_64bits_digest(state.get())), total};
}

}  // namespace shardvec
