// The bounds on every size shardvec reads from a store, a file or a flag. A store may be written by
// other jobs or other people, so no size it declares is trusted: each read names the most bytes it
// accepts, and a larger object is a clear error naming the object, its size and the limit, never an
// out-of-memory abort or a full disk. README.md ("Limits") lists them for users.
#pragma once

#include <cstdint>

namespace shardvec {

// The _CURRENT pointer is a few hundred bytes of JSON.
inline constexpr int64_t kMaxCurrentPointerBytes = int64_t{64} << 10;  // 64 KiB
// A manifest is a SQLite file of one row per shard (about 200 bytes each, plus custom metadata).
inline constexpr int64_t kMaxManifestBytes = int64_t{256} << 20;  // 256 MiB
// Other metadata a store holds (run records, ...), and any whole-object read that names no bound.
inline constexpr int64_t kMaxMetadataObjectBytes = kMaxManifestBytes;
// A routing artifact (.npy centroids or hyperplanes) and any .npy matrix read whole into memory
// (--centroids, --query-file): 1,000,000 shards x 256 float32 dimensions fit.
inline constexpr int64_t kMaxNpyFileBytes = int64_t{1} << 30;  // 1 GiB
// A .npy header (the dict text); NumPy itself writes a few hundred bytes.
inline constexpr int64_t kMaxNpyHeaderBytes = int64_t{64} << 10;  // 64 KiB
// An AWS config or credentials file.
inline constexpr int64_t kMaxConfigFileBytes = int64_t{16} << 20;  // 16 MiB
// Shards per snapshot, for the writer's config, the CLI's --num-dbs and a manifest's num_dbs alike.
inline constexpr int64_t kMaxNumDbs = 1'000'000;
// The deepest nesting of arrays and objects untrusted JSON may have. nlohmann parses any depth, but
// dumping, copying and comparing recurse once per level: a 200 KB line of '[' overflows the stack.
// (Python's json module stops near 1000 levels; real payloads nest a handful.)
inline constexpr int kMaxJsonNesting = 512;
// The most threads a caller may ask one pool for (the reader's max_workers, the writer's
// max_parallel_shards, the CLI's --max-workers and --parallelism): far more than any machine's
// cores, few enough that their stacks (8 MiB of address space each) fit an ordinary process.
inline constexpr int64_t kMaxPoolThreads = 1024;

}  // namespace shardvec
