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

Result<std::string> RangedObject::FetchBytes(int64_t offset, int64_t length) {
  const int64_t part = std::max<int64_t>(options_.max_request_bytes, 1);
  std::vector<std::pair<int64_t, int64_t>> parts;  // (offset, length)
  for (int64_t at = offset; at < offset + length; at += part) {
    parts.emplace_back(at, std::min(part, offset + length - at));
  }
  std::vector<Result<std::string>> got;
  got.reserve(parts.size());
  if (pool_ == nullptr || parts.size() == 1) {
    for (const auto& [at, n] : parts) got.push_back(store_->GetRange(key_, at, n));
  } else {
    std::vector<std::future<Result<std::string>>> futures;
    futures.reserve(parts.size());
    for (const auto& [at, n] : parts) {
      futures.push_back(pool_->Submit([this, at = at, n = n] { return store_->GetRange(key_, at, n); }));
    }
    for (auto& f : futures) got.push_back(f.get());
  }
  std::string out;
  out.reserve(static_cast<size_t>(length));
  for (size_t i = 0; i < parts.size(); ++i) {
    counters_->requests.fetch_add(1, std::memory_order_relaxed);
    if (!got[i].ok()) return got[i].status().WithContext(fmt::format("ranged read of '{}'", Url()));
    counters_->bytes_fetched.fetch_add(static_cast<int64_t>(got[i]->size()), std::memory_order_relaxed);
    if (static_cast<int64_t>(got[i]->size()) != parts[i].second) {
      return Status::Corruption(fmt::format("'{}' answered {} bytes for the {} bytes at offset {} (the object should be {} bytes)",
                                            Url(), got[i]->size(), parts[i].second, parts[i].first, size_));
    }
    out += *got[i];
  }
  return out;
}

Result<std::string> RangedObject::FetchPages(int64_t first_page, int64_t end_page) {
  const int64_t offset = first_page * options_.page_bytes;
  return FetchBytes(offset, std::min(end_page * options_.page_bytes, size_) - offset);
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
  int64_t page = 0;
  for (; page * options_.page_bytes < whole; ++page) {
    const int64_t at = page * options_.page_bytes;
    const int64_t n = std::min(options_.page_bytes, size_ - at);
    if (at + n > whole) break;  // a partial page is never cached
    InsertLocked(page, std::string(prefix.substr(static_cast<size_t>(at), static_cast<size_t>(n))));
  }
  fetched_end_page_ = page;
}

Status RangedObject::Read(int64_t offset, int64_t length, char* out) {
  if (offset < 0 || length < 0 || offset > size_ - length) {
    return Status::InvalidArgument(fmt::format("read of {} bytes at offset {} is outside '{}' ({} bytes)", length,
                                               offset, Url(), size_));
  }
  if (length == 0) return Status::OK();
  if (options_.page_cache_pages <= 0) {
    ASSIGN_OR_RETURN(std::string bytes, FetchBytes(offset, length));
    std::memcpy(out, bytes.data(), bytes.size());
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
  int64_t miss_first = -1, miss_last = -1, fetch_end = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
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
    // A miss right where the last fetch ended continues a scan: read further ahead each time (up
    // to half the cache, so a window never evicts itself); any other miss ends the scan.
    const int64_t max_window =
        std::min(options_.max_readahead_bytes / page_bytes, options_.page_cache_pages / 2);
    window_pages_ = miss_first == fetched_end_page_ ? std::min(std::max<int64_t>(1, window_pages_ * 2), max_window) : 0;
    fetch_end = std::min(miss_last + 1 + std::max<int64_t>(window_pages_, 0), PagesIn(size_));
    // Read-ahead stops at the first page already held.
    for (int64_t page = miss_last + 1; page < fetch_end; ++page) {
      if (pages_.count(page) != 0) {
        fetch_end = page;
        break;
      }
    }
    fetched_end_page_ = fetch_end;
  }
  ASSIGN_OR_RETURN(std::string bytes, FetchPages(miss_first, fetch_end));
  std::lock_guard<std::mutex> lock(mu_);
  for (int64_t page = miss_first; page < fetch_end; ++page) {
    const size_t at = static_cast<size_t>((page - miss_first) * page_bytes);
    const size_t n = std::min(static_cast<size_t>(page_bytes), bytes.size() - at);
    if (page <= last) copy_page(page, bytes.data() + at);
    InsertLocked(page, bytes.substr(at, n));
  }
  return Status::OK();
}

}  // namespace shardvec
