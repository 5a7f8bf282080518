// The device-independent caching allocator (tensor/caching_allocator.h) over a fake
// segment source of host memory with a capacity limit.
#include "tensor/caching_allocator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tensor/error.h"

namespace sp {
namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * 1024;

// Host memory, 512-byte aligned, refusing to hold more than `capacity` bytes at once.
class FakeSource final : public SegmentSource {
 public:
  explicit FakeSource(size_t capacity) : capacity_(capacity) {}
  ~FakeSource() override { EXPECT_TRUE(live_.empty()) << live_.size() << " segments leaked"; }

  void* allocate_segment(size_t nbytes) override {
    ++attempts;
    if (held + nbytes > capacity_) {
      ++failures;
      return nullptr;
    }
    void* p = std::aligned_alloc(512, nbytes);
    if (p == nullptr) return nullptr;
    // Touch both ends: a wrong size shows under sanitizers.
    static_cast<unsigned char*>(p)[0] = 0xAB;
    static_cast<unsigned char*>(p)[nbytes - 1] = 0xAB;
    live_[p] = nbytes;
    held += nbytes;
    ++allocs;
    sizes.push_back(nbytes);
    return p;
  }
  void free_segment(void* p, size_t nbytes) override {
    auto it = live_.find(p);
    ASSERT_NE(it, live_.end()) << "freeing an unknown segment";
    EXPECT_EQ(it->second, nbytes) << "segment freed with the wrong size";
    live_.erase(it);
    held -= nbytes;
    ++frees;
    std::free(p);
  }
  std::string last_error() const override { return "fake source: capacity reached"; }

  size_t held = 0;
  int attempts = 0, allocs = 0, frees = 0, failures = 0;
  std::vector<size_t> sizes;  // of every successful segment allocation

 private:
  size_t capacity_;
  std::map<void*, size_t> live_;
};

uintptr_t addr(void* p) { return reinterpret_cast<uintptr_t>(p); }

TEST(CachingAllocator, RoundsTo512AndPicksSegmentSizes) {
  using CA = CachingAllocator;
  EXPECT_EQ(CA::round_size(1), 512u);
  EXPECT_EQ(CA::round_size(512), 512u);
  EXPECT_EQ(CA::round_size(513), 1024u);
  EXPECT_EQ(CA::round_size(1000), 1024u);
  EXPECT_EQ(CA::segment_size(512), 2 * kMiB);
  EXPECT_EQ(CA::segment_size(1 * kMiB), 2 * kMiB);
  EXPECT_EQ(CA::segment_size(1 * kMiB + 512), 20 * kMiB);
  EXPECT_EQ(CA::segment_size(10 * kMiB - 512), 20 * kMiB);
  EXPECT_EQ(CA::segment_size(10 * kMiB), 10 * kMiB);
  EXPECT_EQ(CA::segment_size(11 * kMiB + 512), 12 * kMiB);
}

TEST(CachingAllocator, ZeroBytesIsNullAndCounted) {
  FakeSource src(64 * kMiB);
  CachingAllocator a("fake:0", src);
  EXPECT_EQ(a.allocate(0), nullptr);
  a.deallocate(nullptr, 0);
  EXPECT_EQ(a.stats().num_allocs, 1);
  EXPECT_EQ(a.stats().num_system_allocs, 0);
  EXPECT_EQ(src.attempts, 0);
}

TEST(CachingAllocator, SmallBlocksShareOneSegmentAndAreAligned) {
  FakeSource src(64 * kMiB);
  CachingAllocator a("fake:0", src);
  std::vector<void*> ps;
  for (size_t n : std::vector<size_t>{1, 100, 512, 513, 4000, 64 * kKiB, 1 * kMiB - 7}) {
    void* p = a.allocate(n);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(addr(p) % 512, 0u) << n;
    std::memset(p, 1, n);
    ps.push_back(p);
  }
  // 512 + 512 + 512 + 1024 + 4096 + 64 KiB + 1 MiB = 1 MiB + 71,168 < 2 MiB.
  EXPECT_EQ(src.allocs, 1);
  EXPECT_EQ(a.stats().num_system_allocs, 1);
  EXPECT_EQ(a.num_segments(), 1);
  EXPECT_EQ(src.sizes[0], 2 * kMiB);
  // Blocks of one segment are laid out in order and do not overlap.
  for (size_t i = 1; i < ps.size(); ++i) EXPECT_GT(addr(ps[i]), addr(ps[i - 1]));
  for (void* p : ps) a.deallocate(p, 0);
  EXPECT_EQ(a.stats().current_bytes, 0);
  EXPECT_EQ(a.stats().cached_bytes, static_cast<int64_t>(2 * kMiB));
}

TEST(CachingAllocator, StatsAreExact) {
  FakeSource src(64 * kMiB);
  CachingAllocator a("fake:0", src);
  void* p1 = a.allocate(1000);  // 1024 of a 2 MiB segment
  AllocatorStats s = a.stats();
  EXPECT_EQ(s.current_bytes, 1000);
  EXPECT_EQ(s.peak_bytes, 1000);
  EXPECT_EQ(s.cached_bytes, static_cast<int64_t>(2 * kMiB - 1024));
  EXPECT_EQ(s.num_allocs, 1);
  EXPECT_EQ(s.num_system_allocs, 1);
  EXPECT_EQ(a.reserved_bytes(), static_cast<int64_t>(2 * kMiB));

  void* p2 = a.allocate(3 * kMiB);  // large pool: a 20 MiB segment, split
  s = a.stats();
  EXPECT_EQ(s.current_bytes, static_cast<int64_t>(1000 + 3 * kMiB));
  EXPECT_EQ(s.peak_bytes, s.current_bytes);
  EXPECT_EQ(s.cached_bytes, static_cast<int64_t>(2 * kMiB - 1024 + 17 * kMiB));
  EXPECT_EQ(s.num_system_allocs, 2);
  EXPECT_EQ(a.reserved_bytes(), static_cast<int64_t>(22 * kMiB));

  a.deallocate(p2, 3 * kMiB);
  s = a.stats();
  EXPECT_EQ(s.current_bytes, 1000);
  EXPECT_EQ(s.peak_bytes, static_cast<int64_t>(1000 + 3 * kMiB));
  EXPECT_EQ(s.cached_bytes, static_cast<int64_t>(22 * kMiB - 1024));
  a.reset_peak();
  EXPECT_EQ(a.stats().peak_bytes, 1000);
  a.deallocate(p1, 1000);
  s = a.stats();
  EXPECT_EQ(s.current_bytes, 0);
  EXPECT_EQ(s.peak_bytes, 1000);
  EXPECT_EQ(s.cached_bytes, static_cast<int64_t>(22 * kMiB));
  EXPECT_EQ(s.num_allocs, 2);
}

TEST(CachingAllocator, ReusesFreedBlocksWithoutANewSegment) {
  FakeSource src(64 * kMiB);
  CachingAllocator a("fake:0", src);
  void* p = a.allocate(12 * kMiB);
  a.deallocate(p, 12 * kMiB);
  for (int i = 0; i < 5; ++i) {
    void* q = a.allocate(12 * kMiB - 1000 * static_cast<size_t>(i));
    EXPECT_EQ(q, p);
    a.deallocate(q, 0);
  }
  void* s1 = a.allocate(4096);
  a.deallocate(s1, 4096);
  void* s2 = a.allocate(4000);
  EXPECT_EQ(s2, s1);
  a.deallocate(s2, 4000);
  EXPECT_EQ(a.stats().num_system_allocs, 2);
  EXPECT_EQ(src.allocs, 2);
  EXPECT_EQ(a.stats().num_allocs, 8);
}

TEST(CachingAllocator, BestFitTakesTheSmallestFittingBlock) {
  FakeSource src(64 * kMiB);
  CachingAllocator a("fake:0", src);
  // One segment: [A 8 KiB][x 512][B 2 KiB][y 512][C 4 KiB][z 512][rest]
  void* A = a.allocate(8 * kKiB);
  void* x = a.allocate(512);
  void* B = a.allocate(2 * kKiB);
  void* y = a.allocate(512);
  void* C = a.allocate(4 * kKiB);
  void* z = a.allocate(512);
  ASSERT_EQ(src.allocs, 1);
  a.deallocate(A, 0);
  a.deallocate(B, 0);
  a.deallocate(C, 0);
  // Free blocks: 8 KiB, 2 KiB, 4 KiB and the big rest. 1500 bytes -> 1536: B is smallest.
  void* b2 = a.allocate(1500);
  EXPECT_EQ(b2, B);
  // 3 KiB: B's remainder (512) is too small, C (4 KiB) is the best fit, not A.
  void* c2 = a.allocate(3 * kKiB);
  EXPECT_EQ(c2, C);
  // 6 KiB: only A (8 KiB) and the rest fit; A is smaller.
  void* a2 = a.allocate(6 * kKiB);
  EXPECT_EQ(a2, A);
  for (void* p : {b2, c2, a2, x, y, z}) a.deallocate(p, 0);
  EXPECT_EQ(a.stats().cached_bytes, static_cast<int64_t>(2 * kMiB));
  EXPECT_EQ(src.allocs, 1);
}

TEST(CachingAllocator, EqualSizesPreferTheLowerAddress) {
  FakeSource src(64 * kMiB);
  CachingAllocator a("fake:0", src);
  void* p1 = a.allocate(1024);
  void* sep1 = a.allocate(512);
  void* p2 = a.allocate(1024);
  void* sep2 = a.allocate(512);
  a.deallocate(p2, 0);
  a.deallocate(p1, 0);
  EXPECT_EQ(a.allocate(1024), p1);
  EXPECT_EQ(a.allocate(1024), p2);
  (void)sep1;
  (void)sep2;
}

TEST(CachingAllocator, SplitsAndCoalescesIntoOneBlock) {
  FakeSource src(64 * kMiB);
  CachingAllocator a("fake:0", src);
  void* p1 = a.allocate(512 * kKiB);
  void* p2 = a.allocate(512 * kKiB);
  void* p3 = a.allocate(512 * kKiB);
  EXPECT_EQ(addr(p2), addr(p1) + 512 * kKiB);
  EXPECT_EQ(addr(p3), addr(p2) + 512 * kKiB);
  EXPECT_EQ(src.allocs, 1);
  // Free the middle, then its neighbours: the segment becomes one free 2 MiB block again,
  // so a request for 1 MiB (two old blocks) fits at the segment's start.
  a.deallocate(p2, 0);
  a.deallocate(p1, 0);
  void* big = a.allocate(1 * kMiB);
  EXPECT_EQ(big, p1);
  a.deallocate(big, 0);
  a.deallocate(p3, 0);
  // Whole again: empty_cache can return it.
  a.empty_cache();
  EXPECT_EQ(src.frees, 1);
  EXPECT_EQ(a.num_segments(), 0);
}

TEST(CachingAllocator, LargePoolSplitsOnlyBigRemainders) {
  FakeSource src(256 * kMiB);
  CachingAllocator a("fake:0", src);
  void* p = a.allocate(9 * kMiB + 700 * kKiB);  // 20 MiB segment, remainder 10.3 MiB: split
  void* q = a.allocate(2 * kMiB);               // from the remainder
  EXPECT_EQ(src.allocs, 1);
  EXPECT_EQ(addr(q), addr(p) + 9 * kMiB + 700 * kKiB);
  a.deallocate(p, 0);
  a.deallocate(q, 0);
  // p and q coalesced: the free 20 MiB block fits 12.5 MiB, no new segment.
  void* r = a.allocate(12 * kMiB + 512 * kKiB);
  EXPECT_EQ(r, p);
  EXPECT_EQ(src.allocs, 1);
  // Remainder 7.5 MiB > 1 MiB: split. 20 MiB - 12.5 MiB = 7.5 MiB cached.
  EXPECT_EQ(a.stats().cached_bytes, static_cast<int64_t>(7 * kMiB + 512 * kKiB));
  a.deallocate(r, 0);
  // A remainder of at most 1 MiB stays inside the block.
  void* t = a.allocate(19 * kMiB + 512);
  EXPECT_EQ(src.allocs, 1);
  EXPECT_EQ(a.stats().cached_bytes, 0);
  EXPECT_EQ(a.stats().current_bytes, static_cast<int64_t>(19 * kMiB + 512));
  a.deallocate(t, 0);
  // Small requests never come from the large pool.
  void* s = a.allocate(4096);
  EXPECT_EQ(src.allocs, 2);
  EXPECT_EQ(src.sizes.back(), 2 * kMiB);
  a.deallocate(s, 0);
}

TEST(CachingAllocator, EmptyCacheReturnsOnlyWholeFreeSegments) {
  FakeSource src(256 * kMiB);
  CachingAllocator a("fake:0", src);
  void* small_live = a.allocate(1000);
  void* small_dead = nullptr;
  {
    // Fill the first small segment so the next small block needs a second one.
    std::vector<void*> fill;
    for (int i = 0; i < 3; ++i) fill.push_back(a.allocate(600 * kKiB));
    small_dead = a.allocate(512 * kKiB);
    EXPECT_EQ(a.num_segments(), 2);
    for (void* p : fill) a.deallocate(p, 0);
  }
  void* big = a.allocate(30 * kMiB);
  a.deallocate(big, 0);
  a.deallocate(small_dead, 0);
  EXPECT_EQ(a.num_segments(), 3);
  const int64_t held_before = a.stats().current_bytes;
  a.empty_cache();
  // The segment holding small_live stays; the other small one and the big one go.
  EXPECT_EQ(a.num_segments(), 1);
  EXPECT_EQ(src.frees, 2);
  EXPECT_EQ(src.held, 2 * kMiB);
  EXPECT_EQ(a.reserved_bytes(), static_cast<int64_t>(2 * kMiB));
  EXPECT_EQ(a.stats().cached_bytes, static_cast<int64_t>(2 * kMiB - 1024));
  EXPECT_EQ(a.stats().current_bytes, held_before);
  std::memset(small_live, 7, 1000);  // still valid
  a.deallocate(small_live, 1000);
  a.empty_cache();
  EXPECT_EQ(src.held, 0u);
  EXPECT_EQ(a.stats().cached_bytes, 0);
}

TEST(CachingAllocator, OnSourceFailureFreesTheCacheAndRetries) {
  FakeSource src(40 * kMiB);
  CachingAllocator a("fake:0", src);
  void* p = a.allocate(30 * kMiB);
  void* s = a.allocate(1000);
  a.deallocate(p, 0);
  a.deallocate(s, 0);
  EXPECT_EQ(a.stats().cached_bytes, static_cast<int64_t>(32 * kMiB));
  // No cached block fits 36 MiB, and 32 MiB cached + 36 MiB passes the 40 MiB capacity:
  // both cached segments go back and the retry succeeds.
  void* q = a.allocate(36 * kMiB);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(src.failures, 1);
  EXPECT_EQ(src.frees, 2);
  EXPECT_EQ(src.held, 36 * kMiB);
  EXPECT_EQ(a.stats().num_system_allocs, 3);
  EXPECT_EQ(a.stats().cached_bytes, 0);
  EXPECT_EQ(a.stats().current_bytes, static_cast<int64_t>(36 * kMiB));
  a.deallocate(q, 0);
}

TEST(CachingAllocator, FallsBackToATightSegmentWhenTheSharedOneDoesNotFit) {
  FakeSource src(16 * kMiB);
  CachingAllocator a("fake:0", src);
  // 5 MiB would take a 20 MiB segment, over capacity: a 6 MiB segment (5 MiB rounded to
  // 2 MiB) is tried after the cache is emptied.
  void* p = a.allocate(5 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(src.sizes.back(), 6 * kMiB);
  EXPECT_EQ(src.failures, 2);
  a.deallocate(p, 0);
}

TEST(CachingAllocator, RealOutOfMemoryThrowsWithSizesAndStatsAndStaysUsable) {
  FakeSource src(64 * kMiB);
  CachingAllocator a("cuda:3", src);
  void* held = a.allocate(40 * kMiB);
  void* tmp = a.allocate(1000);
  a.deallocate(tmp, 0);
  a.reset_peak();
  try {
    a.allocate(100 * kMiB + 1);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("[allocate] cuda:3: out of memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cannot allocate 106954752 bytes (102.00 MiB)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("requested 104857601 bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("41943040 bytes (40.00 MiB) held by tensors"), std::string::npos) << msg;
    // The cached small segment was returned before the retry: nothing cached is left.
    EXPECT_NE(msg.find("0 bytes cached"), std::string::npos) << msg;
    EXPECT_NE(msg.find("peak 41943040 bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fake source: capacity reached"), std::string::npos) << msg;
  }
  EXPECT_EQ(src.frees, 1);
  // Still usable: the live block is intact and new requests that fit succeed.
  void* q = a.allocate(10 * kMiB);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(a.stats().current_bytes, static_cast<int64_t>(50 * kMiB));
  a.deallocate(q, 0);
  a.deallocate(held, 0);
  EXPECT_EQ(a.stats().current_bytes, 0);
}

TEST(CachingAllocator, AbsurdRequestsFailWithoutOverflow) {
  FakeSource src(64 * kMiB);
  CachingAllocator a("fake:0", src);
  EXPECT_THROW(a.allocate(SIZE_MAX), Error);
  EXPECT_THROW(a.allocate(SIZE_MAX - 100), Error);
  EXPECT_EQ(src.allocs, 0);
  void* p = a.allocate(100);
  EXPECT_NE(p, nullptr);
  a.deallocate(p, 100);
}

TEST(CachingAllocator, ConcurrentAllocationsStayConsistent) {
  FakeSource src(1024 * kMiB);
  CachingAllocator a("fake:0", src);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::pair<unsigned char*, size_t>> mine;
      for (int i = 0; i < 400; ++i) {
        // Mostly small-pool sizes, every 50th a large-pool one.
        const size_t n = i % 50 == 0
                             ? 3 * kMiB + static_cast<size_t>(t) * 4096
                             : 1 + static_cast<size_t>((i * 7919 + t * 104729) % (300 * kKiB));
        auto* p = static_cast<unsigned char*>(a.allocate(n));
        std::memset(p, t + 1, n);
        mine.emplace_back(p, n);
        if (mine.size() > 20) {
          auto [q, m] = mine.front();
          mine.erase(mine.begin());
          for (size_t k = 0; k < m; k += 4093)
            if (q[k] != t + 1) ++bad;
          a.deallocate(q, m);
        }
      }
      for (auto [q, m] : mine) {
        if (q[m - 1] != t + 1) ++bad;
        a.deallocate(q, m);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0) << "blocks handed to two threads at once";
  EXPECT_EQ(a.stats().current_bytes, 0);
  EXPECT_EQ(a.stats().cached_bytes, a.reserved_bytes());
  EXPECT_EQ(a.stats().num_allocs, 1600);
}

}  // namespace
}  // namespace sp
