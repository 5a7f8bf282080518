#pragma once
// Helpers shared by the fused optimizer loops (internal to nn/optim).
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "tensor/cpu/parallel.h"
#include "tensor/dtype.h"

namespace sp::optim::detail {

// Arithmetic type of an update for parameter type P: f64 for f64, else f32.
template <typename P>
using update_t = std::conditional_t<std::is_same_v<P, double>, double, float>;

template <typename C, typename P>
inline C load(P x) {
  if constexpr (std::is_same_v<P, C>)
    return x;
  else if constexpr (std::is_same_v<P, double> || std::is_same_v<P, float>)
    return static_cast<C>(x);
  else
    return static_cast<C>(static_cast<float>(x));
}

template <typename P, typename C>
inline P store(C v) {
  if constexpr (std::is_same_v<P, C>)
    return v;
  else if constexpr (std::is_same_v<P, double> || std::is_same_v<P, float>)
    return static_cast<P>(v);
  else
    return P(static_cast<float>(v));
}

// Elements per work item of the flat loops: partial sums are kept per item, in item order,
// so every reduction gives the same bits whatever the thread count (exact resume on a
// machine with another core count).
inline constexpr int64_t kChunk = 16384;

// Sums fn(begin, end) -> double over [0, n) cut into kChunk pieces, in parallel, and adds
// the partials in order. scratch is reused between calls.
template <typename F>
double chunked_sum(int64_t n, int64_t cost_per_element, std::vector<double>& scratch, F&& fn) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  scratch.assign(static_cast<size_t>(chunks), 0.0);
  double* partial = scratch.data();
  sp::cpu::parallel_for(chunks, kChunk * cost_per_element, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) partial[c] = fn(c * kChunk, std::min(n, (c + 1) * kChunk));
  });
  double total = 0;
  for (int64_t c = 0; c < chunks; ++c) total += partial[c];
  return total;
}

// Runs fn(begin, end) over [0, n) in kChunk pieces, in parallel.
template <typename F>
void chunked_for(int64_t n, int64_t cost_per_element, F&& fn) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  sp::cpu::parallel_for(chunks, kChunk * cost_per_element,
                        [&](int64_t c0, int64_t c1) { fn(c0 * kChunk, std::min(n, c1 * kChunk)); });
}

}  // namespace sp::optim::detail
