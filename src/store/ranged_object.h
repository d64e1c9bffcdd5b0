// RangedObject: reads parts of one immutable object in a store through ranged GETs, without
// downloading it, behind a bounded LRU cache of fixed-size pages. A read that misses fetches only
// the missing pages, adjacent ones coalesced into one request; a miss right after a page it holds
// (a scan) is read ahead in growing windows, whose missing runs are split into parts fetched in
// parallel. Every byte fetched is counted. Thread-safe.
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

#include "shardvec/object_store.h"
#include "shardvec/status.h"

namespace shardvec {

class ThreadPool;

// What ranged reads cost, summed over every object that shares the counters (e.g. one reader's).
struct RangeReadCounters {
  std::atomic<int64_t> bytes_fetched{0};
  std::atomic<int64_t> requests{0};
};

struct RangedObjectOptions {
  int64_t page_bytes = 65536;        // the cache's unit (an SQLite file: its page size)
  int64_t page_cache_pages = 1024;   // pages kept; 0 = no cache and no read-ahead
  int64_t max_request_bytes = int64_t{1} << 20;    // a fetched run is split into parts this large
  int64_t max_readahead_bytes = int64_t{8} << 20;  // the largest read-ahead window
};

class RangedObject {
 public:
  // `size` is the object's size (checked by the caller); `pool` (may be null: one request at a
  // time) fetches a run's parts in parallel and must outlive the object.
  RangedObject(std::shared_ptr<ObjectStore> store, std::string key, int64_t size, RangedObjectOptions options,
               std::shared_ptr<RangeReadCounters> counters, ThreadPool* pool);
  RangedObject(const RangedObject&) = delete;
  RangedObject& operator=(const RangedObject&) = delete;

  // Copies bytes [offset, offset + length) into `out`; the range must lie inside the object.
  // An object that answers fewer bytes than asked is Corruption naming it.
  Status Read(int64_t offset, int64_t length, char* out);
  // Puts bytes the caller already fetched from offset 0 (whole pages only) into the cache.
  void Seed(std::string_view prefix);

  int64_t size() const { return size_; }
  int64_t page_bytes() const { return options_.page_bytes; }
  int64_t cached_pages() const;
  std::string Url() const { return store_->Url(key_); }

 private:
  struct ByteRange {
    int64_t offset = 0;
    int64_t length = 0;
  };
  // The bytes of each range, every range split into parts of at most max_request_bytes, all the
  // parts fetched at once on the pool.
  Result<std::vector<std::string>> FetchRanges(const std::vector<ByteRange>& ranges);
  void InsertLocked(int64_t page, std::string data);
  int64_t PagesIn(int64_t bytes) const { return (bytes + options_.page_bytes - 1) / options_.page_bytes; }

  const std::shared_ptr<ObjectStore> store_;
  const std::string key_;
  const int64_t size_;
  const RangedObjectOptions options_;
  const std::shared_ptr<RangeReadCounters> counters_;
  ThreadPool* const pool_;

  mutable std::mutex mu_;
  std::list<int64_t> lru_;  // front = most recently used
  struct Page {
    std::string data;
    std::list<int64_t>::iterator position;
  };
  std::unordered_map<int64_t, Page> pages_;
  int64_t window_pages_ = 0;  // how far the last scan read ahead
};

}  // namespace shardvec
