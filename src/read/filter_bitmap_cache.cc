#include "read/filter_bitmap_cache.h"

#include <fmt/format.h>

namespace shardvec {
namespace {

// What an entry holds beside its bitmap's words and its key: the list node, the index slot, the
// bitmap's own object.
constexpr int64_t kEntryOverheadBytes = 160;

}  // namespace

std::string FilterBitmapCache::Key(uint64_t generation, int64_t db_id, std::string_view filter) {
  return fmt::format("{}/{}/{}", generation, db_id, filter);
}

std::shared_ptr<const FilterBitmap> FilterBitmapCache::Find(uint64_t generation, int64_t db_id,
                                                            std::string_view filter) {
  if (max_bytes_ == 0) return nullptr;
  const std::string key = Key(generation, db_id, filter);
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  ++reused_;
  return it->second->bitmap;
}

void FilterBitmapCache::Insert(uint64_t generation, int64_t db_id, std::string_view filter,
                               std::shared_ptr<const FilterBitmap> bitmap) {
  std::string key = Key(generation, db_id, filter);
  const int64_t bytes = static_cast<int64_t>(bitmap->bits.size() * sizeof(uint64_t) + bitmap->list_passing.size() * sizeof(int64_t) + 2 * key.size()) +
                        kEntryOverheadBytes;
  if (bytes > max_bytes_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (generation < min_generation_ || index_.contains(key)) return;
  while (bytes_ + bytes > max_bytes_ && !lru_.empty()) {
    bytes_ -= lru_.back().bytes;
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
  lru_.push_front(Entry{key, std::move(bitmap), bytes});
  index_.emplace(std::move(key), lru_.begin());
  bytes_ += bytes;
}

void FilterBitmapCache::Reset(uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  min_generation_ = std::max(min_generation_, generation);
  lru_.clear();
  index_.clear();
  bytes_ = 0;
}

int64_t FilterBitmapCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

size_t FilterBitmapCache::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return index_.size();
}

}  // namespace shardvec
