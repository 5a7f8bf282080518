// Random draws and dropout from Philox4x32-10 on the GPU, bit for bit the CPU's
// (tensor/cpu/random.cpp has the per-element mapping; tensor/random.h the generator).
//
// Each thread computes one Philox block b = i / 4 (philox_block is __host__ __device__)
// and writes the block's 4 elements 4b .. 4b + 3, so element i takes lane i % 4 as on the
// CPU. The transforms repeat the CPU's operations in the same order and precision: f64 fma
// for uniform and normal, f64 -> f32 -> bf16/f16 rounding, the multiply-shift for randint,
// f32 comparisons for bernoulli and dropout. No mul + add pair is left for the compiler to
// contract into an fma the CPU does not do. Normal is the one exception to bitwise
// equality: CUDA's f64 log/sin/cos may differ from glibc's by an ulp or two, which after
// rounding to f32 shows as at most a 1-ulp difference in rare elements.
#include <cstdint>
#include <numbers>
#include <type_traits>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/device_types.cuh"

namespace sp::cuda {
namespace {

constexpr int kThreads = 256;

// A block's four elements, stored with one vector store when the output is aligned.
template <typename T>
struct alignas(4 * sizeof(T)) Quad {
  T v[4];
};

template <typename T>
constexpr bool kIs16BitFloat = std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>;

// The CPU's from_double: f64 -> T, the 16-bit floats through f32.
template <typename T>
__device__ __forceinline__ T from_double(double v) {
  if constexpr (kIs16BitFloat<T>) {
    return store_as<T>(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

// Writes v[0 .. 4) to out[e ..] (fewer at the end of out): one store when vec (out aligned
// to a Quad) and the block is full.
template <typename T>
__device__ __forceinline__ void store_block(T* __restrict__ out, int64_t e, int64_t n,
                                            const T (&v)[4], bool vec) {
  if (vec && e + 4 <= n) {
    Quad<T> q;
#pragma unroll
    for (int k = 0; k < 4; ++k) q.v[k] = v[k];
    *reinterpret_cast<Quad<T>*>(out + e) = q;
  } else {
    for (int k = 0; k < 4 && e + k < n; ++k) out[e + k] = v[k];
  }
}

// uniform [a, b): u = philox_uniform(w); v = fma(b - a, u, a) in f64 rounded to T; a value
// that rounds to b or beyond becomes a.
template <typename T>
struct UniformMap {
  double a, range, b;
  __device__ void operator()(const uint32_t (&w)[4], T (&v)[4]) const {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const T x = from_double<T>(::fma(range, static_cast<double>(philox_uniform(w[k])), a));
      v[k] = load_as<double>(x) >= b ? from_double<T>(a) : x;
    }
  }
};

// normal (mean, std): Box-Muller in f64 on lanes (0, 1) and (2, 3): the even lane takes
// r cos t, the odd lane r sin t.
template <typename T>
struct NormalMap {
  double mean, std;
  __device__ void pair(uint32_t lo, uint32_t hi, T& z0, T& z1) const {
    constexpr double k2pow32 = 1.0 / 4294967296.0;
    constexpr double kTwoPi = 2.0 * std::numbers::pi;  // exact: as the CPU's 2.0 * pi * u2
    const double u1 = (static_cast<double>(lo) + 1.0) * k2pow32;
    const double u2 = static_cast<double>(hi) * k2pow32;
    const double r = ::sqrt(-2.0 * ::log(u1));
    const double t = kTwoPi * u2;
    double sin_t, cos_t;
    ::sincos(t, &sin_t, &cos_t);  // one argument reduction for both
    const double c = r * cos_t;
    const double s = r * sin_t;
    z0 = from_double<T>(::fma(std, c, mean));
    z1 = from_double<T>(::fma(std, s, mean));
  }
  __device__ void operator()(const uint32_t (&w)[4], T (&v)[4]) const {
    pair(w[0], w[1], v[0], v[1]);
    pair(w[2], w[3], v[2], v[3]);
  }
};

// randint [lo, hi): lo + ((w * span) >> 32) in u64, span = hi - lo <= 2^32.
template <typename T>
struct RandintMap {
  uint64_t lo, span;
  __device__ void operator()(const uint32_t (&w)[4], T (&v)[4]) const {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int64_t x = static_cast<int64_t>(lo + ((static_cast<uint64_t>(w[k]) * span) >> 32));
      if constexpr (kIs16BitFloat<T>) {
        v[k] = store_as<T>(static_cast<float>(x));
      } else {
        v[k] = static_cast<T>(x);
      }
    }
  }
};

// bernoulli p: philox_uniform(w) < float(p), as 1 / 0.
template <typename T>
struct BernoulliMap {
  float p;
  __device__ void operator()(const uint32_t (&w)[4], T (&v)[4]) const {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const bool x = philox_uniform(w[k]) < p;
      if constexpr (kIs16BitFloat<T>) {
        v[k] = store_as<T>(x ? 1.0f : 0.0f);
      } else {
        v[k] = static_cast<T>(x);
      }
    }
  }
};

// out: [n] contiguous -> out[i] = map(block i / 4)[i % 4]; one thread per Philox block,
// grid-stride.
template <typename T, typename Map>
__global__ void __launch_bounds__(kThreads)
    philox_kernel(T* __restrict__ out, int64_t n, uint64_t seed, uint64_t offset, Map map,
                  bool vec) {
  const int64_t blocks = (n + 3) / 4;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks;
       b += stride) {
    uint32_t w[4];
    philox_block(seed, offset, static_cast<uint64_t>(b), w);
    T v[4];
    map(w, v);
    store_block(out, 4 * b, n, v, vec);
  }
}

// x: [n] -> y: [n] contiguous, same dtype: y[i] = x[i] * (keep(i) ? scale : 0) in the compute
// type C, keep(i) = philox_uniform(word(i)) >= p. Multiplying (not selecting) lets a NaN in
// x show through where it is dropped, as on the CPU.
template <typename T, typename C>
__global__ void __launch_bounds__(kThreads)
    dropout_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t n, uint64_t seed,
                   uint64_t offset, float p, C scale, bool vec) {
  const int64_t blocks = (n + 3) / 4;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks;
       b += stride) {
    const int64_t e = 4 * b;
    // Issue the load before the Philox rounds so its latency hides behind them.
    T in[4];
    if (vec && e + 4 <= n) {
      const Quad<T> q = *reinterpret_cast<const Quad<T>*>(x + e);
#pragma unroll
      for (int k = 0; k < 4; ++k) in[k] = q.v[k];
    } else {
#pragma unroll
      for (int k = 0; k < 4; ++k) in[k] = e + k < n ? x[e + k] : x[e];
    }
    uint32_t w[4];
    philox_block(seed, offset, static_cast<uint64_t>(b), w);
    T v[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const C m = philox_uniform(w[k]) >= p ? scale : C(0);
      v[k] = store_as<T>(load_as<C>(in[k]) * m);
    }
    store_block(y, e, n, v, vec);
  }
}

template <typename T>
bool quad_aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % alignof(Quad<T>) == 0;
}

template <typename T, typename Map>
void launch_philox(const char* op, void* out, int64_t n, PhiloxState s, const Map& map) {
  const int64_t blocks = (n + 3) / 4;
  philox_kernel<T, Map><<<grid_for(blocks, kThreads), kThreads, 0, current_stream()>>>(
      static_cast<T*>(out), n, s.seed, s.offset, map, quad_aligned<T>(out));
  SP_CUDA_CHECK_LAUNCH(op);
}

}  // namespace

// out: any shape, contiguous -> filled with draws for elements 0 .. numel - 1.
void CudaBackend::random(Tensor& out, DistributionParams d, PhiloxState state) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  void* p = address(out);
  switch (d.kind) {
    case Distribution::uniform:
      SP_CUDA_DISPATCH_FLOAT(out.dtype(), "uniform", [&]<typename T>() {
        launch_philox<T>("uniform", p, n, state, UniformMap<T>{d.a, d.b - d.a, d.b});
      });
      return;
    case Distribution::normal:
      SP_CUDA_DISPATCH_FLOAT(out.dtype(), "normal", [&]<typename T>() {
        launch_philox<T>("normal", p, n, state, NormalMap<T>{d.a, d.b});
      });
      return;
    case Distribution::randint: {
      const uint64_t lo = static_cast<uint64_t>(static_cast<int64_t>(d.a));
      const uint64_t span = static_cast<uint64_t>(static_cast<int64_t>(d.b)) - lo;
      SP_CUDA_DISPATCH_ALL(out.dtype(), "randint", [&]<typename T>() {
        if constexpr (std::is_same_v<T, bool>) {
          fail("[randint] unsupported dtype bool");
        } else {
          launch_philox<T>("randint", p, n, state, RandintMap<T>{lo, span});
        }
      });
      return;
    }
    case Distribution::bernoulli:
      SP_CUDA_DISPATCH_ALL(out.dtype(), "bernoulli", [&]<typename T>() {
        launch_philox<T>("bernoulli", p, n, state, BernoulliMap<T>{static_cast<float>(d.a)});
      });
      return;
  }
}

// in: any shape, contiguous -> out: same shape and dtype.
void CudaBackend::dropout(Tensor& out, const Tensor& in, double p, PhiloxState state) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  const float pf = static_cast<float>(p);
  SP_CUDA_DISPATCH_FLOAT(out.dtype(), "dropout", [&]<typename T>() {
    using C = acc_t<T>;
    const C scale = static_cast<C>(1.0 / (1.0 - p));
    T* y = static_cast<T*>(address(out));
    const T* x = static_cast<const T*>(address(in));
    const bool vec = quad_aligned<T>(y) && quad_aligned<T>(x);
    const int64_t blocks = (n + 3) / 4;
    dropout_kernel<T, C><<<grid_for(blocks, kThreads), kThreads, 0, current_stream()>>>(
        y, x, n, state.seed, state.offset, pf, scale, vec);
    SP_CUDA_CHECK_LAUNCH("dropout");
  });
}

}  // namespace sp::cuda
