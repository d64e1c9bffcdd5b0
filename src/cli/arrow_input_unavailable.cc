// LoadArrowInput of a build without Apache Arrow: every Parquet/Arrow file is refused, saying why.
#include <fmt/format.h>

#include "cli/arrow_input.h"
#include "shardvec/text.h"

namespace shardvec {

bool ArrowInputAvailable() { return false; }

Result<InputData> LoadArrowInput(const std::string& path, const ArrowInputColumns&, std::string_view flag) {
  return Status::InvalidArgument(fmt::format(
      "{} '{}': this shardvec was built without Apache Arrow, so it cannot read Parquet or Arrow IPC files "
      "(build it with pyarrow installed in .venv, or convert the file to .npy / .jsonl)",
      flag, EscapeForDisplay(path)));
}

}  // namespace shardvec
