#include "store/ranged_object.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <vector>

#include "common/status_macros.h"
#include "common/thread_pool.h"

namespace shardvec {

RangedObject::RangedObject(std::shared_ptr<ObjectStore> store, std::string key, int64_t size,
                           RangedObjectOptions options, std::shared_ptr<RangeReadCounters> counters,
                           ThreadPool* pool)
    : store_(std::move(store)),
      key_(std::move(key)),
      size_(size),
      options_(options),
      counters_(counters ? std::move(counters) : std::make_shared<RangeReadCounters>()),
      pool_(pool) {}

int64_t RangedObject::cached_pages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(pages_.size());
}

Result<std::vector<std::string>> RangedObject::FetchRanges(const std::vector<ByteRange>& ranges) {
  const int64_t part = std::max<int64_t>(options_.max_request_bytes, 1);
  std::vector<ByteRange> parts;
  for (const ByteRange& range : ranges) {
    for (int64_t at = range.offset; at < range.offset + range.length; at += part) {
      parts.push_back({at, std::min(part, range.offset + range.length - at)});
    }
  }
  std::vector<Result<std::string>> got;
  got.reserve(parts.size());
  if (pool_ == nullptr || parts.size() == 1) {
    for (const ByteRange& p : parts) got.push_back(store_->GetRange(key_, p.offset, p.length));
  } else {
    std::vector<std::future<Result<std::string>>> futures;
    futures.reserve(parts.size());
    for (const ByteRange& p : parts) {
      futures.push_back(pool_->Submit([this, p] { return store_->GetRange(key_, p.offset, p.length); }));
    }
    for (auto& f : futures) got.push_back(f.get());
  }
  std::vector<std::string> out(ranges.size());
  size_t range = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    counters_->requests.fetch_add(1, std::memory_order_relaxed);
    if (!got[i].ok()) return got[i].status().WithContext(fmt::format("ranged read of '{}'", Url()));
    counters_->bytes_fetched.fetch_add(static_cast<int64_t>(got[i]->size()), std::memory_order_relaxed);
    if (static_cast<int64_t>(got[i]->size()) != parts[i].length) {
      return Status::Corruption(fmt::format("'{}' answered {} bytes for the {} bytes at offset {} (the object should be {} bytes)",
                                            Url(), got[i]->size(), parts[i].length, parts[i].offset, size_));
    }
    while (parts[i].offset >= ranges[range].offset + ranges[range].length) ++range;
    out[range] += *got[i];
  }
  return out;
}

void RangedObject::InsertLocked(int64_t page, std::string data) {
  if (options_.page_cache_pages <= 0) return;
  auto found = pages_.find(page);
  if (found != pages_.end()) {
    lru_.splice(lru_.begin(), lru_, found->second.position);
    return;
  }
  lru_.push_front(page);
  pages_.emplace(page, Page{std::move(data), lru_.begin()});
  while (static_cast<int64_t>(pages_.size()) > options_.page_cache_pages) {
    pages_.erase(lru_.back());
    lru_.pop_back();
  }
}

void RangedObject::Seed(std::string_view prefix) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t whole = std::min<int64_t>(static_cast<int64_t>(prefix.size()), size_);
  for (int64_t page = 0; page * options_.page_bytes < whole; ++page) {
    const int64_t at = page * options_.page_bytes;
    const int64_t n = std::min(options_.page_bytes, size_ - at);
    if (at + n > whole) break;  // a partial page is never cached
    InsertLocked(page, std::string(prefix.substr(static_cast<size_t>(at), static_cast<size_t>(n))));
  }
}

Status RangedObject::Read(int64_t offset, int64_t length, char* out) {
  if (offset < 0 || length < 0 || offset > size_ - length) {
    return Status::InvalidArgument(fmt::format("read of {} bytes at offset {} is outside '{}' ({} bytes)", length,
                                               offset, Url(), size_));
  }
  if (length == 0) return Status::OK();
  if (options_.page_cache_pages <= 0) {
    ASSIGN_OR_RETURN(std::vector<std::string> bytes, FetchRanges({{offset, length}}));
    std::memcpy(out, bytes[0].data(), bytes[0].size());
    return Status::OK();
  }
  const int64_t page_bytes = options_.page_bytes;
  const int64_t first = offset / page_bytes;
  const int64_t last = (offset + length - 1) / page_bytes;
  // Copies the part of `page` (its bytes at `data`) that the read covers.
  auto copy_page = [&](int64_t page, const char* data) {
    const int64_t start = std::max(offset, page * page_bytes);
    const int64_t end = std::min(offset + length, (page + 1) * page_bytes);
    std::memcpy(out + (start - offset), data + (start - page * page_bytes), static_cast<size_t>(end - start));
  };
  std::vector<std::pair<int64_t, int64_t>> runs;  // [first, end) pages to fetch
  {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t miss_first = -1, miss_last = -1;
    for (int64_t page = first; page <= last; ++page) {
      auto found = pages_.find(page);
      if (found == pages_.end()) {
        if (miss_first < 0) miss_first = page;
        miss_last = page;
        continue;
      }
      lru_.splice(lru_.begin(), lru_, found->second.position);
      copy_page(page, found->second.data.data());
    }
    if (miss_first < 0) return Status::OK();
    // A miss right after a page held continues a scan: read further ahead each time (up to half
    // the cache, so a window never evicts itself), past pages already held (the B-tree page of a
    // row often sits right after the row's overflow pages and is read first). Any other miss is a
    // lookup: only its pages are fetched, and the next scan starts with half the window.
    const int64_t max_window =
        std::min(options_.max_readahead_bytes / page_bytes, options_.page_cache_pages / 2);
    const bool scan = miss_first > 0 && pages_.count(miss_first - 1) != 0;
    window_pages_ = scan ? std::min(std::max<int64_t>(1, window_pages_ * 2), max_window) : window_pages_ / 2;
    const int64_t fetch_end = std::min(miss_last + 1 + (scan ? window_pages_ : 0), PagesIn(size_));
    // The pages not held, as runs of adjacent pages: one request (or a few parts) each.
    for (int64_t page = miss_first; page < fetch_end; ++page) {
      if (pages_.count(page) != 0) continue;
      if (!runs.empty() && runs.back().second == page) {
        ++runs.back().second;
      } else {
        runs.emplace_back(page, page + 1);
      }
    }
  }
  std::vector<ByteRange> ranges;
  for (const auto& [begin, end] : runs) {
    ranges.push_back({begin * page_bytes, std::min(end * page_bytes, size_) - begin * page_bytes});
  }
  ASSIGN_OR_RETURN(std::vector<std::string> fetched, FetchRanges(ranges));
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t r = 0; r < runs.size(); ++r) {
    const std::string& bytes = fetched[r];
    for (int64_t page = runs[r].first; page < runs[r].second; ++page) {
      const size_t at = static_cast<size_t>((page - runs[r].first) * page_bytes);
      const size_t n = std::min(static_cast<size_t>(page_bytes), bytes.size() - at);
      if (page >= first && page <= last) copy_page(page, bytes.data() + at);
      InsertLocked(page, bytes.substr(at, n));
    }
  }
  return Status::OK();
}

}  // namespace shardvec
