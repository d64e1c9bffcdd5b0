// shard_hash(): xxh3_64 (seed 0) over a value's canonical bytes, as the reference defines it.
#include <xxhash.h>

#include "routing/cel/cel.h"

namespace shardvec::cel {

uint64_t ShardHashInt(int64_t v) {
  // 8-byte little-endian two's complement, independent of the host's byte order.
  const uint64_t bits = static_cast<uint64_t>(v);
  unsigned char bytes[8];
  for (int k = 0; k < 8; ++k) bytes[k] = static_cast<unsigned char>(bits >> (8 * k));
  return XXH3_64bits(bytes, sizeof(bytes));
}

uint64_t ShardHashBytes(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

}  // namespace shardvec::cel
