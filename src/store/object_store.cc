#include "shardvec/object_store.h"

namespace shardvec {

Status ObjectStore::DeleteMany(const std::vector<std::string>& keys) {
  Status first;
  for (const std::string& key : keys) {
    Status st = Delete(key);
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

Result<std::vector<StagedObject>> ObjectStore::ListStaged() { return std::vector<StagedObject>(); }

}  // namespace shardvec
