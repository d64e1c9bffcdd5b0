#include "shardvec/object_store.h"

#include <fmt/format.h>

namespace shardvec {

Status ObjectStore::DeleteMany(const std::vector<std::string>& keys) {
  Status first;
  for (const std::string& key : keys) {
    Status st = Delete(key);
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

Status ObjectStore::TooLarge(std::string_view key, int64_t size, int64_t max_bytes) const {
  return Status::Corruption(fmt::format("object '{}' is {} bytes, more than the {} bytes this read allows",
                                        Url(key), size, max_bytes));
}

}  // namespace shardvec
