// copy and fill on CUDA against the CPU backend, bitwise: every dtype pair (with NaN
// payloads, infinities, signed zeros, bf16 rounding ties and out-of-range float -> int
// values), strided sources and destinations, host <-> device from pageable and strided
// memory, back-to-back uploads from one reused host buffer, and cross-device copies.
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gpu/gpu_test_util.h"
#if SP_WITH_CUDA
#include "tensor/cuda/pinned_staging.h"  // the pool bound, checked below
#endif
#include "tensor/cuda_hooks.h"

namespace sp::testing {
namespace {

double from_bits(uint64_t b) {
  double d;
  std::memcpy(&d, &b, 8);
  return d;
}

// n values in f64: the special ones first, then random ones over a wide range.
Tensor cast_source_values(int64_t n, uint64_t seed) {
  std::vector<double> v = {
      0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.7, -3.7,
      std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
      std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::quiet_NaN(),
      from_bits(0x7ff4000020000000ull),  // NaN with a payload that survives f32
      from_bits(0x7ff0000000000001ull),  // signalling NaN
      1.00390625,                         // a bf16 tie (1 + 2^-8): rounds to even
      1.01171875,                         // 1 + 3 * 2^-8: a tie that rounds up
      65504.0, 65520.0, 1e30, -1e30,      // f16 max, f16 overflow, f32 fine / int overflow
      3e9, -3e9, 2147483647.0, -2147483648.0, 2147483648.0, 9.3e18, -9.3e18,
      1e-40, 1e-310, 5.9604644775390625e-8,  // f32 / f64 denormals, the smallest f16 denormal
      0.1, 1.0 / 3.0};
  const std::vector<double> r = lcg_values(n, seed);
  for (int64_t i = 0; static_cast<int64_t>(v.size()) < n; ++i) {
    // Mostly moderate values; every 4th one huge, so integer wrap / overflow shows.
    v.push_back(i % 4 == 3 ? r[i] * 1e10 : r[i] * 300.0);
  }
  v.resize(static_cast<size_t>(n));
  return Tensor::from_vector(v, Shape{n}, DType::f64);
}

TEST(CopyGpu, EveryDtypePairBitwise) {
  SP_REQUIRE_CUDA();
  for (DType from : kAllDTypes) {
    for (DType to : kAllDTypes) {
      for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{4097}, int64_t{1'000'003}}) {
        SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + dtype_name(to) + " n " +
                     std::to_string(n));
        const Tensor src = kernels::cast(cast_source_values(n, 3 + n), from);
        const Tensor ref = kernels::cast(src, to);
        const Tensor gsrc = to_gpu(src);
        expect_bitwise(gsrc, src);  // the upload itself
        Tensor out = poisoned_gpu(Shape{n}, to);
        cuda_backend().copy(out, gsrc);
        expect_bitwise(out, ref);
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
}

TEST(CopyGpu, StridedSourceAndDestination) {
  SP_REQUIRE_CUDA();
  const Shape shape{37, 129};
  for (DType from : {DType::f32, DType::bf16, DType::i64, DType::boolean}) {
    for (DType to : {DType::f32, DType::bf16, DType::f16, DType::i32}) {
      SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + dtype_name(to));
      const Tensor src = kernels::cast(cast_source_values(shape.numel(), 77), from).reshape(shape);
      const Tensor ref = kernels::cast(src, to);
      const Tensor gsrc = to_gpu(src);
      // Transposed source, contiguous destination.
      {
        const Tensor gt = kernels::transpose(to_gpu(kernels::contiguous(kernels::transpose(src, 0, 1))), 0, 1);
        Tensor out = poisoned_gpu(shape, to);
        cuda_backend().copy(out, gt);
        expect_bitwise(out, ref);
      }
      // Contiguous source, transposed destination (a view of a poisoned buffer).
      {
        Tensor buf = poisoned_gpu(Shape{shape[1], shape[0]}, to);
        Tensor out = kernels::transpose(buf, 0, 1);
        cuda_backend().copy(out, gsrc);
        expect_bitwise(out, ref);
      }
      // Every other column of a wider destination: the skipped ones keep their poison.
      {
        Tensor buf = poisoned_gpu(Shape{shape[0], shape[1] * 2}, to);
        Tensor out = kernels::slice(buf, 1, 0, shape[1] * 2, 2);
        cuda_backend().copy(out, gsrc);
        expect_bitwise(out, ref);
        Tensor cpu_buf = to_cpu(poisoned_gpu(Shape{shape[0], shape[1] * 2}, to));
        Tensor cpu_out = kernels::slice(cpu_buf, 1, 0, shape[1] * 2, 2);
        kernels::copy_(cpu_out, src);
        expect_bitwise(buf, cpu_buf);
      }
      // Broadcast source (stride 0) into a transposed destination.
      {
        const Tensor row = kernels::slice(src, 0, 0, 1);  // [1, cols]
        const Tensor grow = kernels::expand(to_gpu(row), shape);
        Tensor buf = poisoned_gpu(Shape{shape[1], shape[0]}, to);
        Tensor out = kernels::transpose(buf, 0, 1);
        cuda_backend().copy(out, grow);
        expect_bitwise(out, kernels::cast(kernels::expand(row, shape), to));
      }
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(CopyGpu, DeviceToDeviceSameDtype) {
  SP_REQUIRE_CUDA();
  for (DType dt : kAllDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const Tensor src = kernels::cast(cast_source_values(103 * 971, 5), dt);
    const Tensor g = to_gpu(src);
    Tensor out = poisoned_gpu(src.shape(), dt);
    cuda_backend().copy(out, g);  // cudaMemcpyAsync
    expect_bitwise(out, src);
    // Transposed source: the bit-copy kernel.
    const Tensor m = src.reshape(Shape{103, 971});
    const Tensor gt = kernels::transpose(to_gpu(m), 0, 1);
    Tensor outt = poisoned_gpu(gt.shape(), dt);
    cuda_backend().copy(outt, gt);
    expect_bitwise(outt, kernels::contiguous(kernels::transpose(m, 0, 1)));
  }
}

// Sources and destinations one element off 16-byte alignment: the scalar kernel path.
TEST(CopyGpu, MisalignedCastBitwise) {
  SP_REQUIRE_CUDA();
  const int64_t n = 4097;
  for (DType from : kAllDTypes) {
    for (DType to : kAllDTypes) {
      SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + dtype_name(to));
      const Tensor src = kernels::cast(cast_source_values(n + 1, 17), from);
      const Tensor gsrc = kernels::slice(to_gpu(src), 0, 1, n + 1);
      Tensor buf = poisoned_gpu(Shape{n + 1}, to);
      Tensor out = kernels::slice(buf, 0, 1, n + 1);
      cuda_backend().copy(out, gsrc);
      // clone: expect_bitwise reads a CPU reference from its storage's start.
      expect_bitwise(out, kernels::clone(kernels::cast(kernels::slice(src, 0, 1, n + 1), to)));
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(CopyGpu, HostToDeviceLayoutsAndDtypes) {
  SP_REQUIRE_CUDA();
  const Shape shape{300, 257};
  const Tensor host = kernels::cast(cast_source_values(shape.numel(), 9), DType::f32).reshape(shape);
  // Pageable contiguous, same dtype.
  {
    Tensor out = poisoned_gpu(shape, DType::f32);
    kernels::copy_(out, host);
    expect_bitwise(out, host);
  }
  // Non-contiguous host source, converting dtype on the way.
  {
    const Tensor strided = kernels::transpose(host, 0, 1);  // [257, 300]
    Tensor out = poisoned_gpu(strided.shape(), DType::bf16);
    kernels::copy_(out, strided);
    expect_bitwise(out, kernels::cast(kernels::contiguous(strided), DType::bf16));
  }
  // Strided device destination.
  {
    Tensor buf = poisoned_gpu(Shape{shape[1], shape[0]}, DType::f32);
    Tensor out = kernels::transpose(buf, 0, 1);
    kernels::copy_(out, host);
    expect_bitwise(out, host);
  }
  // Larger than one staging chunk (several chunks, the last partial).
  {
    const Tensor big = kernels::cast(cast_source_values(5'000'001, 10), DType::f32);
    Tensor out = poisoned_gpu(big.shape(), DType::f32);
    kernels::copy_(out, big);
    expect_bitwise(out, big);
  }
}

TEST(CopyGpu, DeviceToHostLayoutsAndDtypes) {
  SP_REQUIRE_CUDA();
  const Shape shape{300, 257};
  const Tensor host = kernels::cast(cast_source_values(shape.numel(), 11), DType::bf16).reshape(shape);
  const Tensor g = to_gpu(host);
  // Contiguous, same dtype.
  expect_bitwise(to_cpu(g), host);
  // Strided device source.
  {
    const Tensor gt = kernels::transpose(g, 0, 1);
    Tensor out = Tensor::empty(gt.shape(), DType::bf16);
    kernels::copy_(out, gt);
    expect_bitwise(out, kernels::contiguous(kernels::transpose(host, 0, 1)));
  }
  // Converting dtype into a strided host destination.
  {
    Tensor buf = Tensor::full(Shape{shape[1], shape[0]}, -7.0, DType::f64);
    Tensor out = kernels::transpose(buf, 0, 1);
    kernels::copy_(out, g);
    expect_bitwise(out, kernels::cast(host, DType::f64));
  }
  // Several staging chunks.
  {
    const Tensor big = kernels::cast(cast_source_values(5'000'001, 12), DType::f32);
    const Tensor gb = to_gpu(big);
    Tensor back = Tensor::empty(big.shape(), DType::f32);
    kernels::copy_(back, gb);
    expect_bitwise(back, big);
  }
}

// Host -> device copies return before the GPU has the data: staging must not be reused
// (nor the caller's buffer read late) while a queued copy still needs it. A long kernel
// queued first keeps the copies waiting while the host overwrites its buffer; more bytes
// than the pool holds force acquire to wait for finished copies.
TEST(CopyGpu, BackToBackUploadsFromOneHostBuffer) {
  SP_REQUIRE_CUDA();
  const int64_t sizes[] = {1000, 3'000'000};  // one chunk, and two chunks of 8 MiB
  for (int64_t n : sizes) {
    SCOPED_TRACE(n);
    Tensor host = Tensor::empty(Shape{n}, DType::f32);
    float* h = host.data<float>();
    const int kCopies = 12;  // 12 x 12 MB > the 64 MiB pool for the large size
    std::vector<Tensor> outs;
    for (int c = 0; c < kCopies; ++c) outs.push_back(poisoned_gpu(Shape{n}, DType::f32));
    // Keep the stream busy for tens of milliseconds (no allocations: cudaFree would sync).
    // The emulated device runs each op to its end on the host: nothing to overlap there.
    Tensor ping = to_gpu(random_cpu(Shape{int64_t{1} << 24}, DType::f32, 1));
    Tensor pong = poisoned_gpu(ping.shape(), DType::f32);
    const int rounds = cuda_emulated() ? 1 : 500;
    for (int r = 0; r < rounds; ++r) {
      cuda_backend().unary(UnaryOp::gelu_erf, pong, ping, {});
      cuda_backend().unary(UnaryOp::gelu_erf, ping, pong, {});
    }
    for (int c = 0; c < kCopies; ++c) {
      for (int64_t i = 0; i < n; ++i) h[i] = static_cast<float>(c * 1000003 + i);
      kernels::copy_(outs[c], host);
    }
    std::memset(h, 0xff, static_cast<size_t>(n) * sizeof(float));
#if SP_WITH_CUDA
    if (!cuda_emulated()) {
      EXPECT_LE(cuda::PinnedStaging::instance().pool_bytes(), cuda::PinnedStaging::kMaxPoolBytes);
    }
#endif
    for (int c = 0; c < kCopies; ++c) {
      const std::vector<float> got = to_cpu(outs[c]).to_vector<float>();
      for (int64_t i = 0; i < n; ++i) {
        if (got[i] != static_cast<float>(c * 1000003 + i)) {
          ADD_FAILURE() << "copy " << c << " element " << i << ": got " << got[i] << ", want "
                        << static_cast<float>(c * 1000003 + i);
          return;
        }
      }
    }
  }
}

// Twelve threads uploading and downloading at once: more than the pinned pool's blocks are
// wanted together, so acquire must wait for other threads' releases, not fail.
TEST(CopyGpu, ConcurrentThreadsShareThePinnedPool) {
  SP_REQUIRE_CUDA();
  constexpr int kThreads = 12, kRounds = 4;
  constexpr int64_t n = int64_t{3} << 20;  // 12 MiB of f32: two chunks each way
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &errors] {
      try {
        for (int r = 0; r < kRounds; ++r) {
          std::vector<float> values(static_cast<size_t>(n));
          for (int64_t i = 0; i < n; ++i)
            values[i] = static_cast<float>(t * 100000 + r * 1000 + i % 997);
          const Tensor host = Tensor::from_vector(values, Shape{n});
          const std::vector<float> back = to_cpu(to_gpu(host)).to_vector<float>();
          if (back != values) {
            errors[t] = "round " + std::to_string(r) + ": values differ";
            return;
          }
        }
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(errors[t], "") << "thread " << t;
}

TEST(CopyGpu, FillContiguousAndStrided) {
  SP_REQUIRE_CUDA();
  for (DType dt : kAllDTypes) {
    for (double value : {2.75, -1.0, 0.0}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(value));
      Tensor g = poisoned_gpu(Shape{4097}, dt);
      kernels::fill_(g, value);
      expect_bitwise(g, Tensor::full(Shape{4097}, value, dt));
      // Every third element of a [33, 3 * 65] buffer's rows, transposed: the rest keeps
      // its poison, on the CPU as on the GPU.
      Tensor buf = poisoned_gpu(Shape{33, 195}, dt);
      Tensor view = kernels::transpose(kernels::slice(buf, 1, 1, 195, 3), 0, 1);
      kernels::fill_(view, value);
      Tensor cpu_buf = to_cpu(poisoned_gpu(Shape{33, 195}, dt));
      Tensor cpu_view = kernels::transpose(kernels::slice(cpu_buf, 1, 1, 195, 3), 0, 1);
      kernels::fill_(cpu_view, value);
      expect_bitwise(buf, cpu_buf);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(CopyGpu, EmptyAndScalar) {
  SP_REQUIRE_CUDA();
  Tensor e = Tensor::empty(Shape{0, 5}, DType::f32, Device::cuda(0));
  kernels::copy_(e, Tensor::empty(Shape{0, 5}, DType::bf16));
  kernels::fill_(e, 1.0);
  EXPECT_EQ(to_cpu(e).numel(), 0);
  const Tensor s = Tensor::scalar(3.5, DType::f64);
  Tensor gs = Tensor::empty(Shape{}, DType::bf16, Device::cuda(0));
  kernels::copy_(gs, s);
  Tensor gi = Tensor::empty(Shape{}, DType::i32, Device::cuda(0));
  cuda_backend().copy(gi, gs);
  expect_bitwise(gi, kernels::cast(kernels::cast(s, DType::bf16), DType::i32));
}

TEST(CopyGpu, ErrorsNameTheOp) {
  SP_REQUIRE_REAL_CUDA();
  Tensor out = poisoned_gpu(Shape{4}, DType::f32);
  const Tensor in = to_gpu(Tensor::zeros(Shape{5}, DType::f32));
  EXPECT_THROW_MSG(cuda_backend().copy(out, in), "[copy] shapes differ");
}

TEST(CopyGpu, CrossDevice) {
  SP_REQUIRE_CUDA();
  if (cuda_device_count() < 2) GTEST_SKIP() << "needs 2 GPUs, found " << cuda_device_count();
  const Shape shape{129, 65};
  const Tensor host = kernels::cast(cast_source_values(shape.numel(), 13), DType::f32).reshape(shape);
  const Tensor g0 = to_gpu(host);
  // Contiguous, same dtype: a peer copy.
  Tensor g1 = Tensor::empty(shape, DType::f32, Device::cuda(1));
  kernels::copy_(g1, g0);
  expect_bitwise(g1, host);
  // Converting and strided on both sides.
  Tensor buf = Tensor::empty(Shape{shape[1], shape[0]}, DType::bf16, Device::cuda(1));
  Tensor out = kernels::transpose(buf, 0, 1);
  kernels::copy_(out, kernels::transpose(kernels::transpose(g0, 0, 1).contiguous(), 0, 1));
  expect_bitwise(out, kernels::cast(host, DType::bf16));
  // And back.
  Tensor back = Tensor::empty(shape, DType::f32, Device::cuda(0));
  kernels::copy_(back, g1);
  expect_bitwise(back, host);
}

}  // namespace
}  // namespace sp::testing
