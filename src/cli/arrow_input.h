// Parquet and Arrow IPC inputs for `shardvec build --input x.parquet --vector-col emb --id-col id
// --payload-cols a,b`. Kept out of the engine library: only the CLI (and its tests) link this
// module, and with it Apache Arrow's C++ libraries (those the pinned pyarrow wheel ships). Built
// without Arrow (SHARDVEC_ARROW=OFF, or no pyarrow found at configure time), LoadArrowInput refuses
// every file with an error that says so.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "shardvec/input_files.h"
#include "shardvec/status.h"

namespace shardvec {

// Which columns of the table make which part of each record.
struct ArrowInputColumns {
  std::string vector_col = "vector";      // fixed_size_list or list of float16/float32/float64
  std::string id_col;                     // empty: ids are row numbers; int8..int64, uint8..uint64, string
  std::vector<std::string> payload_cols;  // each row's payload: {"col": value, ...} as JSON
};

// True for the file names this module reads: .parquet, .pq, .arrow, .feather, .ipc (any case).
bool IsArrowInputPath(std::string_view path);
// True for .parquet and .pq (the others are read as Arrow IPC files or streams).
bool IsParquetPath(std::string_view path);

// True when this build can read them.
bool ArrowInputAvailable();

// Reads the columns record batch by record batch (never the whole file at once; the vectors end up
// in one float32 Matrix, float16 widened exactly, float64 narrowed). Errors name the flag, the file,
// the column, the row (0-based over the whole file) and the value: "--input 'x.parquet': column
// 'emb' row 7 has 3 values, expected 4 (ragged rows)".
Result<InputData> LoadArrowInput(const std::string& path, const ArrowInputColumns& columns,
                                 std::string_view flag = "--input");

}  // namespace shardvec
