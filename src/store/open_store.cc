#include <fmt/format.h>

#include "common/status_macros.h"
#include "shardvec/object_store.h"
#include "store/local_store.h"
#include "store/s3_store.h"

namespace shardvec {

Result<std::shared_ptr<ObjectStore>> OpenStore(std::string_view prefix, const StoreOptions& options) {
  if (prefix.rfind("s3://", 0) == 0) {
    ASSIGN_OR_RETURN(std::shared_ptr<S3Store> store, S3Store::Open(prefix, options));
    return std::shared_ptr<ObjectStore>(std::move(store));
  }
  ASSIGN_OR_RETURN(std::filesystem::path root, LocalPathFromPrefix(prefix));
  return std::shared_ptr<ObjectStore>(std::make_shared<LocalStore>(std::move(root)));
}

}  // namespace shardvec
