#include "common/digest.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace shardvec {
namespace {

// The library's entry points that pick AVX-512, AVX2 or SSE2 at run time where it has them: the plain
// ones are built for SSE2 only (Debian's baseline), less than half the speed on data in cache.
uint64_t Hash64(const void* data, size_t bytes) {
#if defined(__x86_64__)
  return XXH3_64bits_dispatch(data, bytes);
#else
  return XXH3_64bits(data, bytes);
#endif
}

void HashUpdate(XXH3_state_t* state, const void* data, size_t bytes) {
#if defined(__x86_64__)
  XXH3_64bits_update_dispatch(state, data, bytes);
#else
  XXH3_64bits_update(state, data, bytes);
#endif
}

}  // namespace

uint64_t Xxh3_64(std::string_view bytes) { return Hash64(bytes.data(), bytes.size()); }

std::string Xxh3Digest(std::string_view bytes) { return fmt::format("xxh3:{:016x}", Xxh3_64(bytes)); }

struct Xxh3Stream::State {
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> xxh{XXH3_createState(), XXH3_freeState};
};

Xxh3Stream::Xxh3Stream() : state_(std::make_unique<State>()) { XXH3_64bits_reset(state_->xxh.get()); }
Xxh3Stream::~Xxh3Stream() = default;

void Xxh3Stream::Update(std::string_view bytes) { HashUpdate(state_->xxh.get(), bytes.data(), bytes.size()); }

std::string Xxh3Stream::Digest() const {
  return fmt::format("xxh3:{:016x}", XXH3_64bits_digest(state_->xxh.get()));
}

Result<FileDigest> DigestFile(const std::filesystem::path& path, size_t window_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::IOError(fmt::format("cannot open '{}': {}", path.string(), std::strerror(errno)));
  }
  Result<FileDigest> digest = DigestFd(fd, path, window_bytes);
  ::close(fd);
  return digest;
}

Result<FileDigest> DigestFd(int fd, const std::filesystem::path& path, size_t window_bytes) {
  struct ::stat st {};
  if (::fstat(fd, &st) != 0) {
    return Status::IOError(fmt::format("cannot stat '{}': {}", path.string(), std::strerror(errno)));
  }
  const auto total = static_cast<size_t>(st.st_size);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  window_bytes = std::max(page, window_bytes / page * page);
  // Hashed through windows mapped straight from the page cache: read() would first copy every byte
  // (the shard was just written, so its pages are cached), which cost as much CPU as the hash itself.
  Xxh3Stream stream;
  for (size_t offset = 0; offset < total; offset += window_bytes) {
    const size_t length = std::min(window_bytes, total - offset);
    void* map = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, static_cast<off_t>(offset));
    if (map == MAP_FAILED) {
      return Status::IOError(fmt::format("cannot map '{}' at byte {}: {}", path.string(), offset, std::strerror(errno)));
    }
    stream.Update(std::string_view(static_cast<const char*>(map), length));
    ::munmap(map, length);
  }
  return FileDigest{stream.Digest(), static_cast<int64_t>(total)};
}

}  // namespace shardvec
