#include "tensor/caching_allocator.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <vector>

#include "tensor/error.h"

namespace sp {
namespace {

// "3145728 bytes (3.00 MiB)": exact for tests and logs, readable for people.
std::string format_bytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return str_cat(bytes, " bytes");
  double v = static_cast<double>(bytes);
  int unit = -1;
  while (v >= 1024 && unit < 3) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f %s", v, kUnits[unit]);
  return str_cat(bytes, " bytes (", buf, ")");
}

// Requests this large cannot be rounded without overflowing size_t: no device has that
// much memory, so they fail as out of memory without asking the source.
constexpr size_t kMaxRequest = std::numeric_limits<size_t>::max() / 2;

}  // namespace

CachingAllocator::CachingAllocator(std::string device_name, SegmentSource& source)
    : device_name_(std::move(device_name)), source_(source) {}

CachingAllocator::~CachingAllocator() {
  for (Block* head : segments_) {
    size_t bytes = 0;
    for (Block* b = head; b != nullptr;) {
      bytes += b->size;
      Block* next = b->next;
      if (b != head) delete b;
      b = next;
    }
    source_.free_segment(head->ptr, bytes);
    delete head;
  }
}

size_t CachingAllocator::round_size(size_t nbytes) {
  if (nbytes == 0) return kRound;
  return (nbytes + kRound - 1) / kRound * kRound;
}

size_t CachingAllocator::segment_size(size_t rounded) {
  if (rounded <= kSmallRequest) return kSmallSegment;
  if (rounded < kMidRequest) return kMidSegment;
  return (rounded + kLargeRound - 1) / kLargeRound * kLargeRound;
}

void* CachingAllocator::allocate(size_t nbytes) {
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.num_allocs;
  if (nbytes == 0) return nullptr;
  if (nbytes > kMaxRequest) fail_oom_locked(nbytes, nbytes);
  const size_t rounded = round_size(nbytes);
  const bool small = rounded <= kSmallRequest;
  Block* b = find_free_locked(rounded, small);
  if (b == nullptr) b = new_segment_locked(rounded, small, nbytes);
  split_locked(b, rounded);
  b->allocated = true;
  b->requested = nbytes;
  live_.emplace(b->ptr, b);
  stats_.cached_bytes -= static_cast<int64_t>(b->size);
  stats_.current_bytes += static_cast<int64_t>(nbytes);
  stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
  return b->ptr;
}

// The smallest free block of the pool with size >= rounded (the lowest address among
// equals), taken out of the free set; nullptr when none fits.
CachingAllocator::Block* CachingAllocator::find_free_locked(size_t rounded, bool small) {
  FreeSet& free = pool(small);
  Block key;
  key.size = rounded;
  key.ptr = nullptr;
  auto it = free.lower_bound(&key);
  if (it == free.end()) return nullptr;
  Block* b = *it;
  free.erase(it);
  return b;
}

// A fresh segment for a request of `rounded` bytes, as one free block (counted in
// cached_bytes), not in the free set. On failure: empty the cache and retry, then try the
// smallest segment that fits; then throw.
CachingAllocator::Block* CachingAllocator::new_segment_locked(size_t rounded, bool small,
                                                              size_t requested) {
  size_t size = segment_size(rounded);
  void* p = source_.allocate_segment(size);
  if (p == nullptr) {
    release_free_segments_locked();
    p = source_.allocate_segment(size);
  }
  if (p == nullptr && !small) {
    const size_t tight = (rounded + kLargeRound - 1) / kLargeRound * kLargeRound;
    if (tight < size) {
      size = tight;
      p = source_.allocate_segment(size);
    }
  }
  if (p == nullptr) fail_oom_locked(requested, size);
  auto* b = new Block;
  b->ptr = static_cast<char*>(p);
  b->size = size;
  b->small = small;
  segments_.insert(b);
  ++stats_.num_system_allocs;
  stats_.cached_bytes += static_cast<int64_t>(size);
  reserved_bytes_ += static_cast<int64_t>(size);
  return b;
}

// Cuts b (free, out of the free set) down to `rounded` bytes when the remainder is worth
// keeping; the remainder becomes a free block of the same pool.
void CachingAllocator::split_locked(Block* b, size_t rounded) {
  const size_t rest = b->size - rounded;
  const bool worth = b->small ? rest >= kRound : rest > kSmallRequest;
  if (!worth) return;
  auto* r = new Block;
  r->ptr = b->ptr + rounded;
  r->size = rest;
  r->small = b->small;
  r->prev = b;
  r->next = b->next;
  if (b->next != nullptr) b->next->prev = r;
  b->next = r;
  b->size = rounded;
  pool(r->small).insert(r);
}

void CachingAllocator::deallocate(void* p, size_t) {
  if (p == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) {
    // Called from destructors: never throw. A pointer we did not hand out is a bug in the
    // caller; keeping the cache intact is the safest answer.
    std::fprintf(stderr, "[deallocate] %s: %p was not allocated by this allocator\n",
                 device_name_.c_str(), p);
    return;
  }
  Block* b = it->second;
  live_.erase(it);
  stats_.current_bytes -= static_cast<int64_t>(b->requested);
  stats_.cached_bytes += static_cast<int64_t>(b->size);
  b->allocated = false;
  b->requested = 0;
  FreeSet& free = pool(b->small);
  // Coalesce: the later block is always absorbed into the earlier one, so a segment's
  // first block (the key in segments_) never changes.
  if (Block* n = b->next; n != nullptr && !n->allocated) {
    free.erase(n);
    b->size += n->size;
    b->next = n->next;
    if (n->next != nullptr) n->next->prev = b;
    delete n;
  }
  if (Block* q = b->prev; q != nullptr && !q->allocated) {
    free.erase(q);
    q->size += b->size;
    q->next = b->next;
    if (b->next != nullptr) b->next->prev = q;
    delete b;
    b = q;
  }
  free.insert(b);
}

void CachingAllocator::release_free_segments_locked() {
  for (FreeSet* free : {&small_free_, &large_free_}) {
    std::vector<Block*> whole;
    for (Block* b : *free)
      if (b->prev == nullptr && b->next == nullptr) whole.push_back(b);
    for (Block* b : whole) {
      free->erase(b);
      segments_.erase(b);
      source_.free_segment(b->ptr, b->size);
      stats_.cached_bytes -= static_cast<int64_t>(b->size);
      reserved_bytes_ -= static_cast<int64_t>(b->size);
      delete b;
    }
  }
}

void CachingAllocator::fail_oom_locked(size_t requested, size_t segment) {
  const std::string why = source_.last_error();
  fail(str_cat("[allocate] ", device_name_, ": out of memory: cannot allocate ",
               format_bytes(static_cast<int64_t>(std::min(segment, kMaxRequest))), " (requested ",
               format_bytes(static_cast<int64_t>(std::min(requested, kMaxRequest))), "); ",
               format_bytes(stats_.current_bytes), " held by tensors, ",
               format_bytes(stats_.cached_bytes), " cached, peak ", format_bytes(stats_.peak_bytes),
               why.empty() ? "" : "; ", why));
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_bytes = stats_.current_bytes;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_free_segments_locked();
}

int64_t CachingAllocator::reserved_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reserved_bytes_;
}

int64_t CachingAllocator::num_segments() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(segments_.size());
}

}  // namespace sp
