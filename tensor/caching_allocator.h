#pragma once
// A PyTorch-style caching allocator over a source of large segments (cudaMalloc on a GPU,
// a fake in tests). Device-independent, so it is built and unit-tested everywhere.
//
// Policy:
//   - Every request is rounded up to a multiple of 512 bytes (kRound); blocks are 512-byte
//     aligned within their segment, so a block is as aligned as its segment, up to 512.
//   - Small pool: requests of at most 1 MiB come from 2 MiB segments, many per segment.
//   - Large pool: larger requests under 10 MiB come from 20 MiB segments (as PyTorch does,
//     so mid-sized activations share a few segments instead of one cudaMalloc each);
//     requests of 10 MiB or more get a segment of their size rounded up to 2 MiB. The two
//     pools never lend to each other, which keeps small blocks from fragmenting big ones.
//   - Best fit: the smallest free block that fits, ties broken by the lower address.
//   - A block is split when the remainder is worth keeping (any remainder in the small
//     pool, more than 1 MiB in the large pool) and coalesced with free neighbours in its
//     segment when freed.
//   - When the source fails: every wholly free segment goes back to the source and the
//     request is retried once (then, for a rounded-up large segment, once more at the
//     smallest size that fits); if that fails too, allocate() throws sp::Error
//     "[allocate] <device>: out of memory: ...".
//
// Streams: the allocator assumes every use of a block is ordered on one stream per device
// (cuda::stream(device)). A freed block may then be handed out again at once: any kernel
// that reads or writes it through the new owner is queued after every kernel that used it
// through the old one. Returning a segment to the source (empty_cache) relies on the
// source to wait for the device first (cudaFree does; the CUDA source also synchronises).
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "tensor/allocator.h"

namespace sp {

// Where segments come from. Called with the allocator's lock held.
class SegmentSource {
 public:
  virtual ~SegmentSource() = default;
  // A segment of nbytes, or nullptr when the memory is not available (never throws for that).
  virtual void* allocate_segment(size_t nbytes) = 0;
  // Gives back a segment that allocate_segment returned, with its size.
  virtual void free_segment(void* p, size_t nbytes) = 0;
  // Why the last allocate_segment failed, for the error message ("" when unknown).
  virtual std::string last_error() const { return ""; }
};

class CachingAllocator final : public Allocator {
 public:
  static constexpr size_t kRound = 512;
  static constexpr size_t kSmallRequest = size_t{1} << 20;  // <= this: small pool
  static constexpr size_t kSmallSegment = size_t{2} << 20;  // small pool segments
  static constexpr size_t kMidRequest = size_t{10} << 20;   // < this: a shared segment
  static constexpr size_t kMidSegment = size_t{20} << 20;   // large pool, mid requests
  static constexpr size_t kLargeRound = size_t{2} << 20;    // big segments round to this

  // device_name names the device in errors ("cuda:0"). source must outlive the allocator.
  CachingAllocator(std::string device_name, SegmentSource& source);
  // Returns every segment to the source, including those still in use.
  ~CachingAllocator() override;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // nullptr for 0 bytes. Throws sp::Error when the source cannot supply a segment.
  void* allocate(size_t nbytes) override;
  // p must come from allocate(); nbytes is ignored (the block remembers its request).
  void deallocate(void* p, size_t nbytes) override;
  // current_bytes: requested sizes of live blocks; cached_bytes: free bytes inside the
  // segments (reserved_bytes() - what live blocks occupy after rounding);
  // num_system_allocs: segments obtained from the source.
  AllocatorStats stats() const override;
  void reset_peak() override;
  // Returns every wholly free segment to the source.
  void empty_cache() override;

  // Bytes in segments obtained from the source and not yet returned.
  int64_t reserved_bytes() const;
  // Segments currently held from the source.
  int64_t num_segments() const;

  // The block size a request of nbytes occupies, and the segment a new one would need.
  static size_t round_size(size_t nbytes);
  static size_t segment_size(size_t rounded);

 private:
  struct Block {
    char* ptr = nullptr;
    size_t size = 0;       // bytes of the segment this block covers
    size_t requested = 0;  // the caller's size while allocated
    bool allocated = false;
    bool small = false;     // which pool
    Block* prev = nullptr;  // neighbours in the same segment, by address
    Block* next = nullptr;
  };
  struct BySizeThenAddress {
    bool operator()(const Block* a, const Block* b) const {
      return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
    }
  };
  using FreeSet = std::set<Block*, BySizeThenAddress>;

  FreeSet& pool(bool small) { return small ? small_free_ : large_free_; }
  Block* find_free_locked(size_t rounded, bool small);
  Block* new_segment_locked(size_t rounded, bool small, size_t requested);
  void split_locked(Block* b, size_t rounded);
  void release_free_segments_locked();
  [[noreturn]] void fail_oom_locked(size_t requested, size_t segment);

  std::string device_name_;
  SegmentSource& source_;
  mutable std::mutex mu_;
  FreeSet small_free_, large_free_;
  std::unordered_map<void*, Block*> live_;  // allocated blocks by address
  std::set<Block*> segments_;               // the first block of each segment
  AllocatorStats stats_;
  int64_t reserved_bytes_ = 0;
};

}  // namespace sp
