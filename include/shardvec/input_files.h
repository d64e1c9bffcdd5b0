// Readers for input files, into the engine's in-memory types (Matrix, RecordId, RoutingContext):
// vectors, and optional ids, payloads, shard ids, CEL routing contexts, CEL routing tokens and
// .npy matrices (centroids, hyperplanes). `shardvec build` takes its files through these.
//
// Each reader loads the whole file. Errors name the flag and the file, and where it helps the line,
// the field and the value: "--input 'v.jsonl' line 7: vector has 3 values, expected 4 (ragged
// rows)". Bad content is InvalidArgument; a missing file is NotFound; other read failures IOError.
// Text that is not UTF-8 is refused naming the line ("--ids 'ids.txt' line 3: the line is not valid
// UTF-8 (byte 0xFF at offset 2): …"). `flag` only labels messages. Non-finite vector values are
// not checked here (the writer does).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

// The path that names standard input for LoadVectorInput, LoadIdsFile, LoadPayloadsFile,
// LoadShardIdsFile and LoadRoutingContextsFile: its format is found from its content (.npy magic,
// IDX magic, else JSON lines or, for ids and shard ids, text lines); gzip is refused.
inline constexpr std::string_view kStandardInputPath = "-";

struct InputData {
  Matrix vectors;
  // Present when the input carries ids (only .jsonl can); rows without one get their row number.
  std::optional<std::vector<RecordId>> ids;
  // Present when any .jsonl line has a payload object; JSON text in the user's key order.
  std::optional<std::vector<std::optional<std::string>>> payloads;
  // Present when the .jsonl lines carry shard_id (then every line does).
  std::optional<std::vector<int64_t>> shard_ids;
  // Present when the .jsonl lines carry routing_context (then every line does): CEL sharding.
  std::optional<std::vector<RoutingContext>> routing_contexts;
};

// Vectors from, by content or extension (any of them may be gzip-compressed):
//  - .npy: a C-order float32/float64 2-D array;
//  - .fvecs: rows of (little-endian int32 dim, dim float32), all with the same dim;
//  - IDX (e.g. Fashion-MNIST *-idx3-ubyte[.gz]): magic 0x00000803, n×rows×cols uint8 becoming
//    n vectors of rows*cols pixel values 0..255 (not normalised), or 0x00000D03 for float32;
//  - .jsonl: one object per line {"id": 7 | "doc-7", "vector": [...], "payload": {...} | null,
//    "shard_id": 3, "routing_context": {"region": "eu"}}; only "vector" is required; blank lines
//    are skipped. routing_context values are JSON scalars or {"__bytes_hex__": "<hex>"} for bytes.
Result<InputData> LoadVectorInput(const std::string& path, std::string_view flag = "--input");

// Ids from an .npy integer array, from .jsonl/.json (a JSON integer or string per line, or a .json
// array of them), or from text with one id per line: a line that is an int64 (optional '-', then
// digits) is an int id, anything else a string id. Trailing '\r' is stripped; blank lines skipped.
Result<std::vector<RecordId>> LoadIdsFile(const std::string& path, std::string_view flag = "--ids");

// Payloads from .jsonl, one JSON object or null per line (blank lines skipped), or a .json array.
Result<std::vector<std::optional<std::string>>> LoadPayloadsFile(
    const std::string& path, std::string_view flag = "--payloads");

// Shard ids from an .npy integer array or a text file of integers, one per line.
Result<std::vector<int64_t>> LoadShardIdsFile(const std::string& path,
                                              std::string_view flag = "--shard-ids");

// CEL routing contexts, one JSON object of variable -> value per line (.jsonl; blank lines skipped)
// or a .json array of such objects. Values are JSON scalars, or {"__bytes_hex__": "<hex>"} for bytes.
Result<std::vector<RoutingContext>> LoadRoutingContextsFile(
    const std::string& path, std::string_view flag = "--routing-context-file");

// A C-order float32/float64 2-D .npy matrix (at most kMaxNpyFileBytes; a 1-D array is one row), e.g.
// CLUSTER centroids, LSH hyperplanes or search queries. Read errors start with `flag`; content errors with "<flag> '<path>'".
Result<Matrix> LoadMatrixFile(const std::string& path, std::string_view flag);

// CEL categorical routing tokens: one JSON array of ints, strings and {"__bytes_hex__": "<hex>"}.
Result<std::vector<RoutingValue>> LoadRoutingValuesFile(
    const std::string& path, std::string_view flag = "--routing-values-file");

}  // namespace shardvec
