// Random draws and dropout from Philox4x32-10 on the CPU.
//
// The per-element mapping, which the CUDA backend must reproduce bit for bit:
//
//   word(i)  = philox_block(seed, offset, i / 4)[i % 4]   (tensor/random.h), i = the
//              element's row-major index in the output (or in dropout's input).
//   uniform  [a, b):  u = philox_uniform(word(i))  (24 bits, an f32 in [0, 1));
//              v = fma(b - a, double(u), a) in f64, rounded to the output dtype; a value
//              that rounds to b or beyond is replaced by a (as PyTorch does). Rounding to
//              bf16/f16 goes through f32 (f64 -> f32 -> bf16), here and below.
//   normal   (mean m, std s): Box-Muller on the lane pairs (0, 1) and (2, 3) of a block,
//              in f64: u1 = (word(lo) + 1) * 2^-32 in (0, 1], u2 = word(hi) * 2^-32,
//              r = sqrt(-2 log u1), t = 2 pi u2; the even lane takes r cos t, the odd lane
//              r sin t; v = fma(s, z, m) rounded to the output dtype. So element i depends
//              on (seed, offset, i) only. (f64 log/sin/cos may differ by an ulp between
//              libm and CUDA; after rounding to f32/bf16/f16 that is all but always equal.)
//   randint  [lo, hi): n = hi - lo <= 2^32; v = lo + ((uint64(word(i)) * n) >> 32), the
//              multiply-shift map (bias at most n / 2^32, no rejection, no modulo).
//   bernoulli p: v = philox_uniform(word(i)) < float(p), as 1 / 0 (or true / false).
//   dropout  p: keep(i) = philox_uniform(word(i)) >= float(p);
//              out = x * (keep ? scale : 0) with scale = 1 / (1 - p) computed in f64 and
//              rounded to the compute type (f32 for f32/bf16/f16, f64 for f64). Multiplying
//              (not selecting) lets a NaN in x show through even where it is dropped.
#include <cmath>
#include <numbers>

#include "tensor/cpu/bf16_simd.h"  // AVX-512 intrinsics and the avx512:: forms
#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/loops.h"
#include "tensor/cpu/parallel.h"

namespace sp::cpu {
namespace {

// Blocks per tile: the Philox rounds run over a tile in structure-of-arrays form, which
// the compiler turns into 16-lane vector code.
constexpr int64_t kTileBlocks = 64;
constexpr int64_t kTileElems = 4 * kTileBlocks;

// words[4 * k + lane] = philox_block(seed, offset, first + k)[lane] for k < kTileBlocks.
// Portable form: structure-of-arrays loops the compiler vectorises.
[[maybe_unused]] void philox_tile_portable(PhiloxState s, uint64_t first, uint32_t* words) {
  alignas(64) uint32_t c0[kTileBlocks], c1[kTileBlocks], c2[kTileBlocks], c3[kTileBlocks];
  const uint32_t off_lo = static_cast<uint32_t>(s.offset);
  const uint32_t off_hi = static_cast<uint32_t>(s.offset >> 32);
  for (int64_t k = 0; k < kTileBlocks; ++k) {
    const uint64_t b = first + static_cast<uint64_t>(k);
    c0[k] = static_cast<uint32_t>(b);
    c1[k] = static_cast<uint32_t>(b >> 32);
    c2[k] = off_lo;
    c3[k] = off_hi;
  }
  uint32_t key0 = static_cast<uint32_t>(s.seed), key1 = static_cast<uint32_t>(s.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    for (int64_t k = 0; k < kTileBlocks; ++k) {
      const uint64_t p0 = uint64_t{kPhiloxMul0} * c0[k];
      const uint64_t p1 = uint64_t{kPhiloxMul1} * c2[k];
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[k] ^ key0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[k] ^ key1;
      c0[k] = n0;
      c1[k] = static_cast<uint32_t>(p1);
      c2[k] = n2;
      c3[k] = static_cast<uint32_t>(p0);
    }
    key0 += kPhiloxWeyl0;
    key1 += kPhiloxWeyl1;
  }
  for (int64_t k = 0; k < kTileBlocks; ++k) {
    words[4 * k + 0] = c0[k];
    words[4 * k + 1] = c1[k];
    words[4 * k + 2] = c2[k];
    words[4 * k + 3] = c3[k];
  }
}

#if defined(__AVX512F__)
// The high 32 bits of each lane's 32 x 32 -> 64-bit product with m: vpmuludq multiplies
// the even lanes, and the odd lanes after a shift; a blend puts the high halves in place.
inline __m512i mulhi_epu32(__m512i a, __m512i m) {
  const __m512i even = avx512::mul_epu32(a, m);
  const __m512i odd = avx512::mul_epu32(avx512::srli64(a, 32), m);
  return _mm512_mask_blend_epi32(0xAAAA, avx512::srli64(even, 32), odd);
}

// The same words with 16 blocks per vector: 10 rounds of two mulhi/mullo pairs and two
// three-way xors, then a transpose to the interleaved [block][lane] order.
void philox_tile_avx512(PhiloxState s, uint64_t first, uint32_t* words) {
  constexpr int kVecs = kTileBlocks / 16;
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(kPhiloxMul0));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(kPhiloxMul1));
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i c0[kVecs], c1[kVecs], c2[kVecs], c3[kVecs];
  for (int v = 0; v < kVecs; ++v) {
    // Block first + 16 v + j: its low word may wrap, carrying into the high word.
    const uint64_t base = first + 16 * static_cast<uint64_t>(v);
    const __m512i lo = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(base)), iota);
    const __mmask16 carry = _mm512_cmplt_epu32_mask(lo, iota);
    const __m512i hi = _mm512_set1_epi32(static_cast<int>(base >> 32));
    c0[v] = lo;
    c1[v] = _mm512_mask_add_epi32(hi, carry, hi, _mm512_set1_epi32(1));
    c2[v] = _mm512_set1_epi32(static_cast<int>(s.offset));
    c3[v] = _mm512_set1_epi32(static_cast<int>(s.offset >> 32));
  }
  uint32_t key0 = static_cast<uint32_t>(s.seed), key1 = static_cast<uint32_t>(s.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const __m512i k0 = _mm512_set1_epi32(static_cast<int>(key0));
    const __m512i k1 = _mm512_set1_epi32(static_cast<int>(key1));
    for (int v = 0; v < kVecs; ++v) {
      const __m512i hi0 = mulhi_epu32(c0[v], m0), lo0 = _mm512_mullo_epi32(c0[v], m0);
      const __m512i hi1 = mulhi_epu32(c2[v], m1), lo1 = _mm512_mullo_epi32(c2[v], m1);
      c0[v] = _mm512_ternarylogic_epi32(hi1, c1[v], k0, 0x96);  // hi1 ^ c1 ^ key0
      c2[v] = _mm512_ternarylogic_epi32(hi0, c3[v], k1, 0x96);  // hi0 ^ c3 ^ key1
      c1[v] = lo1;
      c3[v] = lo0;
    }
    key0 += kPhiloxWeyl0;
    key1 += kPhiloxWeyl1;
  }
  // Interleave to [block][lane]: pairs (c0, c1) and (c2, c3) per block, then the pairs
  // of four blocks side by side. permutex2var picks from two vectors by index (16 + j:
  // the second); it has no undefined-source form, which gcc 12 warns about.
  const __m512i pair_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i pair_hi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i quad_lo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const __m512i quad_hi =
      _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  for (int v = 0; v < kVecs; ++v) {
    const __m512i c01_lo = _mm512_permutex2var_epi32(c0[v], pair_lo, c1[v]);  // blocks 0-7
    const __m512i c01_hi = _mm512_permutex2var_epi32(c0[v], pair_hi, c1[v]);  // blocks 8-15
    const __m512i c23_lo = _mm512_permutex2var_epi32(c2[v], pair_lo, c3[v]);
    const __m512i c23_hi = _mm512_permutex2var_epi32(c2[v], pair_hi, c3[v]);
    uint32_t* w = words + 64 * v;
    _mm512_store_si512(w + 0, _mm512_permutex2var_epi32(c01_lo, quad_lo, c23_lo));
    _mm512_store_si512(w + 16, _mm512_permutex2var_epi32(c01_lo, quad_hi, c23_lo));
    _mm512_store_si512(w + 32, _mm512_permutex2var_epi32(c01_hi, quad_lo, c23_hi));
    _mm512_store_si512(w + 48, _mm512_permutex2var_epi32(c01_hi, quad_hi, c23_hi));
  }
}
#endif

void philox_tile(PhiloxState s, uint64_t first, uint32_t* words) {
#if defined(__AVX512F__)
  philox_tile_avx512(s, first, words);
#else
  philox_tile_portable(s, first, words);
#endif
}

// Calls fn(begin, end, words) over [0, n) in tiles of kTileElems elements (in parallel),
// words[i - begin] being element i's word. begin is a multiple of kTileElems.
template <typename F>
void for_each_tile(int64_t n, PhiloxState s, int64_t cost_per_elem, F&& fn) {
  const int64_t tiles = (n + kTileElems - 1) / kTileElems;
  parallel_for(tiles, kTileElems * cost_per_elem, [&](int64_t t0, int64_t t1) {
    alignas(64) uint32_t words[kTileElems];
    for (int64_t t = t0; t < t1; ++t) {
      philox_tile(s, static_cast<uint64_t>(t * kTileBlocks), words);
      const int64_t begin = t * kTileElems;
      fn(begin, std::min(begin + kTileElems, n), static_cast<const uint32_t*>(words));
    }
  });
}

template <typename T>
inline T from_double(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
    return T(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

// The per-element maps below take their pointers as arguments, not lambda captures, so the
// compiler sees them loop-invariant and vectorises.

// out[i] for i < n from words w[i]: uniform in [a, a + range) (see the top of the file).
template <typename T>
void uniform_span(T* __restrict out, const uint32_t* __restrict w, int64_t n, double a,
                  double range, double b) {
  for (int64_t i = 0; i < n; ++i) {
    const T v = from_double<T>(std::fma(range, static_cast<double>(philox_uniform(w[i])), a));
    out[i] = static_cast<double>(v) >= b ? from_double<T>(a) : v;
  }
}

template <typename T>
void uniform_typed(T* out, int64_t n, double a, double b, PhiloxState s) {
  for_each_tile(n, s, 2, [&](int64_t begin, int64_t end, const uint32_t* w) {
    uniform_span(out + begin, w, end - begin, a, b - a, b);
  });
}

// Box-Muller over word pairs; an odd n leaves the last pair's sine unused.
template <typename T>
void normal_span(T* __restrict out, const uint32_t* __restrict w, int64_t n, double mean,
                 double std) {
  constexpr double k2pow32 = 1.0 / 4294967296.0;
  for (int64_t j = 0; j < n; j += 2) {
    const double u1 = (static_cast<double>(w[j]) + 1.0) * k2pow32;
    const double u2 = static_cast<double>(w[j + 1]) * k2pow32;
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double t = 2.0 * std::numbers::pi * u2;
    out[j] = from_double<T>(std::fma(std, r * std::cos(t), mean));
    if (j + 1 < n) out[j + 1] = from_double<T>(std::fma(std, r * std::sin(t), mean));
  }
}

template <typename T>
void normal_typed(T* out, int64_t n, double mean, double std, PhiloxState s) {
  for_each_tile(n, s, 32, [&](int64_t begin, int64_t end, const uint32_t* w) {
    normal_span(out + begin, w, end - begin, mean, std);
  });
}

// lo + ((word * span) >> 32), in unsigned arithmetic so that no step can overflow.
template <typename T>
void randint_span(T* __restrict out, const uint32_t* __restrict w, int64_t n, uint64_t lo,
                  uint64_t span) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = static_cast<int64_t>(lo + ((static_cast<uint64_t>(w[i]) * span) >> 32));
    if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
      out[i] = T(static_cast<float>(v));
    } else {
      out[i] = static_cast<T>(v);
    }
  }
}

template <typename T>
void randint_typed(T* out, int64_t n, int64_t lo, int64_t hi, PhiloxState s) {
  const uint64_t ulo = static_cast<uint64_t>(lo);
  const uint64_t span = static_cast<uint64_t>(hi) - ulo;
  for_each_tile(n, s, 1, [&](int64_t begin, int64_t end, const uint32_t* w) {
    randint_span(out + begin, w, end - begin, ulo, span);
  });
}

template <typename T>
void bernoulli_span(T* __restrict out, const uint32_t* __restrict w, int64_t n, float p) {
  for (int64_t i = 0; i < n; ++i) {
    const bool v = philox_uniform(w[i]) < p;
    if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
      out[i] = T(v ? 1.0f : 0.0f);
    } else {
      out[i] = static_cast<T>(v);
    }
  }
}

template <typename T>
void bernoulli_typed(T* out, int64_t n, double p, PhiloxState s) {
  const float pf = static_cast<float>(p);
  for_each_tile(n, s, 1, [&](int64_t begin, int64_t end, const uint32_t* w) {
    bernoulli_span(out + begin, w, end - begin, pf);
  });
}

template <typename T, typename C>
void dropout_span(T* __restrict y, const T* __restrict x, const uint32_t* __restrict w, int64_t n,
                  float p, C scale) {
  for (int64_t i = 0; i < n; ++i) {
    const C m = philox_uniform(w[i]) >= p ? scale : C(0);
    y[i] = store<T>(load(x[i]) * m);
  }
}

}  // namespace

// out: any shape, contiguous -> filled with draws for elements 0 .. numel - 1.
void CpuBackend::random(Tensor& out, DistributionParams d, PhiloxState state) {
  const int64_t n = out.numel();
  if (n == 0) return;
  switch (d.kind) {
    case Distribution::uniform:
      SP_DISPATCH_FLOAT(out.dtype(), "uniform",
                        [&]<typename T>() { uniform_typed(out.data<T>(), n, d.a, d.b, state); });
      return;
    case Distribution::normal:
      SP_DISPATCH_FLOAT(out.dtype(), "normal",
                        [&]<typename T>() { normal_typed(out.data<T>(), n, d.a, d.b, state); });
      return;
    case Distribution::randint:
      SP_DISPATCH_ALL(out.dtype(), "randint", [&]<typename T>() {
        if constexpr (std::is_same_v<T, bool>) {
          fail("[randint] unsupported dtype bool");
        } else {
          randint_typed(out.data<T>(), n, static_cast<int64_t>(d.a), static_cast<int64_t>(d.b),
                        state);
        }
      });
      return;
    case Distribution::bernoulli:
      SP_DISPATCH_ALL(out.dtype(), "bernoulli",
                      [&]<typename T>() { bernoulli_typed(out.data<T>(), n, d.a, state); });
      return;
  }
}

// in: any shape, contiguous -> out: same shape and dtype.
void CpuBackend::dropout(Tensor& out, const Tensor& in, double p, PhiloxState state) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const float pf = static_cast<float>(p);
  SP_DISPATCH_FLOAT(out.dtype(), "dropout", [&]<typename T>() {
    using C = compute_t<T>;
    const C scale = static_cast<C>(1.0 / (1.0 - p));
    const T* x = in.data<T>();
    T* y = out.data<T>();
    for_each_tile(n, state, 1, [&](int64_t begin, int64_t end, const uint32_t* w) {
      dropout_span(y + begin, x + begin, w, end - begin, pf, scale);
    });
  });
}

}  // namespace sp::cpu
