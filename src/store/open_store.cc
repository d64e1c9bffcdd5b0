#include <fmt/format.h>

#include "common/status_macros.h"
#include "shardvec/object_store.h"
#include "store/local_store.h"

namespace shardvec {

Result<std::shared_ptr<ObjectStore>> OpenStore(std::string_view prefix) {
  if (prefix.rfind("s3://", 0) == 0) {
    return Status::InvalidArgument(fmt::format(
        "store '{}': s3:// stores are not available in this build yet; use a local folder", prefix));
  }
  ASSIGN_OR_RETURN(std::filesystem::path root, LocalPathFromPrefix(prefix));
  return std::shared_ptr<ObjectStore>(std::make_shared<LocalStore>(std::move(root)));
}

}  // namespace shardvec
