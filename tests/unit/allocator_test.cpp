// The CPU allocator's statistics and cache.
#include "tensor/allocator.h"

#include <gtest/gtest.h>

#include "tensor/tensor.h"
#include "test_util.h"

namespace sp {
namespace {

TEST(Allocator, CurrentAndPeakBytes) {
  const AllocatorStats before = cpu_memory_stats();
  reset_cpu_peak_memory();
  {
    Tensor a = Tensor::empty({1000}, DType::f32);
    EXPECT_EQ(cpu_memory_stats().current_bytes, before.current_bytes + 4000);
    {
      Tensor b = Tensor::empty({500}, DType::f64);
      EXPECT_EQ(cpu_memory_stats().current_bytes, before.current_bytes + 8000);
    }
    EXPECT_EQ(cpu_memory_stats().current_bytes, before.current_bytes + 4000);
    EXPECT_EQ(cpu_memory_stats().peak_bytes, before.current_bytes + 8000);
    Tensor view = a.as_strided({10}, {1}, 0);  // views allocate nothing
    EXPECT_EQ(cpu_memory_stats().current_bytes, before.current_bytes + 4000);
  }
  EXPECT_EQ(cpu_memory_stats().current_bytes, before.current_bytes);
  reset_cpu_peak_memory();
  EXPECT_EQ(cpu_memory_stats().peak_bytes, before.current_bytes);
}

TEST(Allocator, ReusesFreedBlocks) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the cache is off under AddressSanitizer";
#else
  { Tensor warm = Tensor::empty({1 << 20}, DType::f32); }
  const int64_t system_allocs = cpu_memory_stats().num_system_allocs;
  for (int i = 0; i < 10; ++i) {
    // Sizes in the same size class as the warm-up block reuse it.
    Tensor t = Tensor::empty({(1 << 20) - 16 * i}, DType::f32);
  }
  EXPECT_EQ(cpu_memory_stats().num_system_allocs, system_allocs);
  EXPECT_GE(cpu_memory_stats().cached_bytes, int64_t{4} << 20);
#endif
}

TEST(Allocator, AbsurdRequestsThrowNamingTheRequestedSize) {
  Allocator& cpu = allocator_for(Device::cpu());
  const AllocatorStats before = cpu_memory_stats();
  // Past SIZE_MAX / 2 the size class computation used to loop forever.
  EXPECT_THROW_MSG(cpu.allocate(SIZE_MAX - 3),
                   "[allocator] out of CPU memory allocating 18446744073709551612 bytes");
  // The message names the request, not only its (larger) size class.
  EXPECT_THROW_MSG(cpu.allocate((size_t{1} << 62) + 1),
                   "allocating 5764607523034234880 bytes (requested 4611686018427387905; ");
  const AllocatorStats after = cpu_memory_stats();
  EXPECT_EQ(after.current_bytes, before.current_bytes);
  EXPECT_EQ(after.peak_bytes, before.peak_bytes);
  Tensor still_fine = Tensor::empty({16});
  EXPECT_EQ(cpu_memory_stats().current_bytes, before.current_bytes + 64);
}

}  // namespace
}  // namespace sp
