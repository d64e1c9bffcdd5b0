// The bitmaps of passing rows a reader keeps across searches: one per (shard, filter), in a least
// recently used list bounded by bytes, so serving the same filter again does not evaluate it again.
// Entries belong to one snapshot generation; Reset drops them all when the reader moves to another
// snapshot, and an older generation's search can neither read nor add entries after that.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace shardvec {

// The rows of one shard a filter passes (FilterPredicate::Evaluate's bitmap) and their count.
struct FilterBitmap {
  std::vector<uint64_t> bits;
  int64_t passing = 0;
  std::vector<int64_t> list_passing;  // with sub-lists: the passing rows of each list
};

class FilterBitmapCache {
 public:
  // `max_bytes` >= 0; 0 keeps nothing.
  explicit FilterBitmapCache(int64_t max_bytes) : max_bytes_(max_bytes) {}

  // The bitmap of shard `db_id` under the filter whose canonical text is `filter`, in snapshot
  // `generation`, or null. A bitmap found counts as reused.
  std::shared_ptr<const FilterBitmap> Find(uint64_t generation, int64_t db_id, std::string_view filter);
  // Keeps `bitmap` (unless its generation is older than the last Reset, or it alone exceeds the
  // budget), dropping the least recently used entries to stay within max_bytes.
  void Insert(uint64_t generation, int64_t db_id, std::string_view filter, std::shared_ptr<const FilterBitmap> bitmap);
  // Drops every entry; generations below `generation` are refused from now on.
  void Reset(uint64_t generation);

  int64_t bytes() const;
  size_t entries() const;
  int64_t max_bytes() const { return max_bytes_; }

  // Bitmaps evaluated over a shard's columns (the caller counts them) and found here, so far.
  void CountEvaluation() { ++evaluated_; }
  int64_t evaluated() const { return evaluated_.load(); }
  int64_t reused() const { return reused_.load(); }

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const FilterBitmap> bitmap;
    int64_t bytes = 0;
  };
  static std::string Key(uint64_t generation, int64_t db_id, std::string_view filter);

  const int64_t max_bytes_;
  std::atomic<int64_t> evaluated_{0};
  std::atomic<int64_t> reused_{0};
  mutable std::mutex mu_;
  uint64_t min_generation_ = 0;
  int64_t bytes_ = 0;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace shardvec
