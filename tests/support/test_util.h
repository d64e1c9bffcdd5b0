// Helpers shared by the test suites: temp folders, random data, running the CLI, and opening shards
// with plain SQLite + the vec0 extension (independent of our own reader).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/types.h"

namespace shardvec::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Gaussian N(0,1) values, row-major, seeded.
Matrix RandomMatrix(int64_t rows, int64_t cols, uint64_t seed);
// `clusters` well-separated Gaussian blobs.
Matrix ClusteredMatrix(int64_t rows, int64_t cols, int64_t clusters, uint64_t seed);

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs a shell command line, capturing stdout and stderr.
CommandResult RunCommand(const std::string& command_line);
// Runs ./shardvec with the given arguments (already shell-quoted where needed).
CommandResult RunCli(const std::string& args);
std::string ShellQuote(const std::string& s);

Matrix MakeMatrix(int64_t rows, int64_t cols, std::vector<float> data);
// A version 1.0 .npy with a hand-written header dict followed by raw data bytes.
std::string MakeNpy(std::string_view dict, std::string_view data);
template <typename T>
std::string RawBytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// Records for every row: ids row*3 (or "doc-<row>"), payload {"row": <row>}, shard_id row % num_dbs
// when num_dbs > 0 (EXPLICIT).
std::vector<Record> MakeRecords(const Matrix& m, bool string_ids, int64_t num_dbs = 0);
// Exact top-k (distance, row) by an independent scan, scored as sqlite-vec scores
// (l2: Euclidean; cosine: 1 - cos).
std::vector<std::pair<double, int64_t>> BruteForce(const Matrix& data, const float* q, Metric metric, int64_t k);

// Writes a float32 .npy file.
void WriteNpy(const std::filesystem::path& path, const Matrix& m);
// Every regular file below `root`, as sorted '/'-separated relative paths.
std::vector<std::string> ListFiles(const std::filesystem::path& root);
void WriteText(const std::filesystem::path& path, const std::string& text);
std::string ReadText(const std::filesystem::path& path);
// The headers a source file includes with quotes (#include "x/y.h" gives "x/y.h").
std::vector<std::string> QuotedIncludes(const std::filesystem::path& source);

// Runs `body` in a forked child whose address space is capped at its size now plus
// `headroom_bytes`, so threads stop starting once their stacks no longer fit (the process limit,
// RLIMIT_NPROC, is ignored for root). Returns what `body` returned (empty = passed), or how the
// child died. Not meaningful in sanitizer builds (their shadow memory needs the address space).
std::string RunWithAddressSpaceCap(int64_t headroom_bytes, const std::function<std::string()>& body);
// True in AddressSanitizer and ThreadSanitizer builds.
bool SanitizedBuild();

// Sets an environment variable for one scope, then restores it (or unsets it again).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Holds an flock on `path` from a forked child process (a live "other process") until destroyed.
class LockHolder {
 public:
  explicit LockHolder(const std::filesystem::path& path, bool shared = false);
  ~LockHolder();
  LockHolder(const LockHolder&) = delete;
  LockHolder& operator=(const LockHolder&) = delete;

 private:
  int pid_ = -1;
  int release_fd_ = -1;  // the child exits when this pipe closes
};

// Builds a shard file of `vectors` with ShardBuilder: id = row number, no payloads; chunk_size 0 is
// the builder's choice; `int8_codes` as ShardBuildOptions'. A test failure when it cannot.
void BuildVec0Shard(const std::filesystem::path& path, const Matrix& vectors, Metric metric, int64_t chunk_size = 0,
                    bool int8_codes = false);
// Opens an SQLite file read-only and loads vec0 explicitly with sqlite3_load_extension.
sqlite3* OpenWithVec0(const std::filesystem::path& path);
// Runs `sql` (one or more statements) on an SQLite file opened read-write, without vec0; a test
// failure when it does not run.
void ExecSql(const std::filesystem::path& path, const std::string& sql);
// Runs a query and returns every row as text (NULL → "<null>").
std::vector<std::vector<std::string>> QueryRows(sqlite3* db, const std::string& sql);
// Opens SQLite bytes (a manifest) in memory.
sqlite3* OpenBytes(const std::string& bytes);

}  // namespace shardvec::testing
