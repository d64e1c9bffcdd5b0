// The part of the Parquet/Arrow input module that needs no Arrow: which paths it reads.
#include <string>

#include "common/text_util.h"
#include "format/arrow_input.h"

namespace shardvec {

bool IsArrowInputPath(std::string_view path) {
  std::string name = AsciiLower(std::string(path.substr(path.find_last_of('/') + 1)));
  for (std::string_view ext : {".parquet", ".pq", ".arrow", ".feather", ".ipc"}) {
    if (name.size() > ext.size() && name.ends_with(ext)) return true;
  }
  return false;
}

}  // namespace shardvec
