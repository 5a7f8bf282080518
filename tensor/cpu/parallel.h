#pragma once
// The one thread pool: OpenMP, shared with oneDNN (Debian's build uses libgomp too).
// Never nest parallel regions: kernels call parallel_for at their outermost loop only.
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace sp::cpu {

// Below this many elements of work a loop runs on the calling thread.
inline constexpr int64_t kParallelGrain = 32768;

inline int num_threads() { return omp_get_max_threads(); }

// Calls fn(begin, end) over [0, n) in contiguous chunks, in parallel when the total work
// (n * cost_per_item elements) is large enough to pay for waking the threads.
template <typename F>
void parallel_for(int64_t n, int64_t cost_per_item, F&& fn) {
  if (n <= 0) return;
  const int64_t work = n * std::max<int64_t>(cost_per_item, 1);
  const int threads = num_threads();
  if (threads <= 1 || work < kParallelGrain || n == 1 || omp_in_parallel()) {
    fn(int64_t{0}, n);
    return;
  }
  const int64_t chunks = std::min<int64_t>(threads, n);
#pragma omp parallel num_threads(static_cast<int>(chunks))
  {
    const int64_t t = omp_get_thread_num();
    const int64_t begin = n * t / chunks;
    const int64_t end = n * (t + 1) / chunks;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace sp::cpu
