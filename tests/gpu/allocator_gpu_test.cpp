// The CUDA caching allocator (tensor/caching_allocator.h over cudaMalloc): statistics,
// block reuse, out-of-memory errors and empty_cache on a real device.
#include <cstdint>
#include <string>
#include <vector>

#include "gpu_test_util.h"
#include "tensor/allocator.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

using testing::to_cpu;

Allocator& gpu_allocator() { return allocator_for(Device::cuda(0)); }

TEST(GpuAllocator, StatsFollowTensors) {
  SP_REQUIRE_CUDA();
  Allocator& a = gpu_allocator();
  const AllocatorStats before = a.stats();
  a.reset_peak();
  {
    Tensor t = Tensor::empty({1000}, DType::f32, Device::cuda(0));
    AllocatorStats s = a.stats();
    EXPECT_EQ(s.current_bytes, before.current_bytes + 4000);
    EXPECT_EQ(s.num_allocs, before.num_allocs + 1);
    {
      Tensor u = Tensor::empty({3, 1000}, DType::f64, Device::cuda(0));
      EXPECT_EQ(a.stats().current_bytes, before.current_bytes + 4000 + 24000);
    }
    s = a.stats();
    EXPECT_EQ(s.current_bytes, before.current_bytes + 4000);
    EXPECT_EQ(s.peak_bytes, before.current_bytes + 28000);
    EXPECT_EQ(s.num_allocs, before.num_allocs + 2);
    Tensor view = t.as_strided({10}, {1}, 0);  // views allocate nothing
    EXPECT_EQ(a.stats().current_bytes, before.current_bytes + 4000);
  }
  const AllocatorStats after = a.stats();
  EXPECT_EQ(after.current_bytes, before.current_bytes);
  // Freed blocks stay cached: at least the two rounded blocks are free segment space.
  EXPECT_GE(after.cached_bytes, 4096 + 24064);
  a.reset_peak();
  EXPECT_EQ(a.stats().peak_bytes, before.current_bytes);
}

TEST(GpuAllocator, FreedBlockIsReusedWithoutCudaMalloc) {
  SP_REQUIRE_CUDA();
  Allocator& a = gpu_allocator();
  // Start from an empty cache: a free block cached by an earlier test could be a better fit.
  a.empty_cache();
  const void* first = nullptr;
  {
    Tensor warm = Tensor::empty({int64_t{4} << 20}, DType::f32, Device::cuda(0));  // 16 MiB
    first = warm.storage()->data();
  }
  const int64_t system_allocs = a.stats().num_system_allocs;
  for (int i = 0; i < 10; ++i) {
    Tensor t = Tensor::empty({(int64_t{4} << 20) - 1000 * i}, DType::f32, Device::cuda(0));
    EXPECT_EQ(t.storage()->data(), first) << i;
    // The reused block works: written on the device's stream, read back exactly.
    kernels::fill_(t, static_cast<double>(i));
    const std::vector<float> v = to_cpu(t.slice(0, 0, 3)).to_vector<float>();
    EXPECT_EQ(v, std::vector<float>(3, static_cast<float>(i)));
  }
  // Small tensors share one 2 MiB segment.
  {
    std::vector<Tensor> small;
    for (int i = 0; i < 50; ++i)
      small.push_back(Tensor::empty({1000}, DType::f32, Device::cuda(0)));
    EXPECT_LE(a.stats().num_system_allocs, system_allocs + 1);
    // Blocks are 512-byte multiples inside segments cudaMalloc aligns to at least 256.
    for (const Tensor& t : small) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.storage()->data()) % 256, 0u);
    }
  }
  const int64_t after_small = a.stats().num_system_allocs;
  for (int i = 0; i < 10; ++i) Tensor t = Tensor::empty({1000}, DType::f32, Device::cuda(0));
  EXPECT_EQ(a.stats().num_system_allocs, after_small);
}

TEST(GpuAllocator, ImpossibleRequestThrowsAndLeavesTheAllocatorUsable) {
  SP_REQUIRE_CUDA();
  Allocator& a = gpu_allocator();
  const int64_t held = a.stats().current_bytes;
  const int64_t tib = int64_t{1} << 40;
  try {
    Tensor huge = Tensor::empty({tib / 4}, DType::f32, Device::cuda(0));
    FAIL() << "allocating 1 TiB succeeded";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("[allocate] cuda:0: out of memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("requested 1099511627776 bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("held by tensors"), std::string::npos) << msg;
    // The emulated device reports its own limit instead.
    if (!cuda_emulated()) {
      EXPECT_NE(msg.find("cudaMalloc"), std::string::npos) << msg;
    }
  }
  EXPECT_EQ(a.stats().current_bytes, held);
  // The failed cudaMalloc left no error behind: allocation, kernels and copies still work.
  Tensor t = Tensor::empty({1 << 20}, DType::f32, Device::cuda(0));
  kernels::fill_(t, 2.5);
  const std::vector<float> v = to_cpu(t).to_vector<float>();
  ASSERT_EQ(v.size(), size_t{1} << 20);
  EXPECT_EQ(v.front(), 2.5f);
  EXPECT_EQ(v.back(), 2.5f);
  EXPECT_EQ(a.stats().current_bytes, held + (int64_t{4} << 20));
}

TEST(GpuAllocator, EmptyCacheDropsCachedBytes) {
  SP_REQUIRE_CUDA();
  Allocator& a = gpu_allocator();
  constexpr int64_t kBytes = int64_t{64} << 20;
  Tensor keep = Tensor::empty({1000}, DType::f32, Device::cuda(0));
  { Tensor big = Tensor::empty({kBytes / 4}, DType::f32, Device::cuda(0)); }
  const AllocatorStats before = a.stats();
  EXPECT_GE(before.cached_bytes, kBytes);
  a.empty_cache();
  const AllocatorStats after = a.stats();
  EXPECT_LE(after.cached_bytes, before.cached_bytes - kBytes);
  EXPECT_EQ(after.current_bytes, before.current_bytes);
  // A live tensor survives empty_cache.
  kernels::fill_(keep, -1.0);
  EXPECT_EQ(to_cpu(keep).to_vector<float>()[999], -1.0f);
  // The next big tensor needs a new segment.
  const int64_t system_allocs = after.num_system_allocs;
  { Tensor big = Tensor::empty({kBytes / 4}, DType::f32, Device::cuda(0)); }
  EXPECT_EQ(a.stats().num_system_allocs, system_allocs + 1);
}

TEST(GpuAllocator, ZeroSizedTensorsAllocateNothing) {
  SP_REQUIRE_CUDA();
  Allocator& a = gpu_allocator();
  const AllocatorStats before = a.stats();
  Tensor t = Tensor::empty({0, 7}, DType::f32, Device::cuda(0));
  EXPECT_EQ(a.stats().current_bytes, before.current_bytes);
  EXPECT_EQ(a.stats().num_system_allocs, before.num_system_allocs);
}

}  // namespace
}  // namespace sp
