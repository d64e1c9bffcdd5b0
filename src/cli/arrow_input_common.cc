// The part of the Parquet/Arrow input module that needs no Arrow: which paths it reads.
#include <cctype>
#include <initializer_list>
#include <string>

#include "cli/arrow_input.h"

namespace shardvec {
namespace {

// The lowercased file name of `path` ends with one of `extensions` (and is more than it).
bool NameEndsWith(std::string_view path, std::initializer_list<std::string_view> extensions) {
  std::string name(path.substr(path.find_last_of('/') + 1));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view ext : extensions) {
    if (name.size() > ext.size() && name.ends_with(ext)) return true;
  }
  return false;
}

}  // namespace

bool IsArrowInputPath(std::string_view path) {
  return NameEndsWith(path, {".parquet", ".pq", ".arrow", ".feather", ".ipc"});
}

bool IsParquetPath(std::string_view path) { return NameEndsWith(path, {".parquet", ".pq"}); }

}  // namespace shardvec
