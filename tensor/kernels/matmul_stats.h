#pragma once
// Counts of matmul kernel calls, so tests can prove what a backward pass computed (a frozen
// weight costs no weight-gradient matmul) and benchmarks can report FLOPs.
#include <cstdint>

namespace sp::kernels {

struct MatmulStats {
  int64_t calls = 0;  // kernels::matmul and kernels::matmul_into calls, all devices
  int64_t flops = 0;  // 2 * batch * M * N * K summed over those calls
};

// Process-wide totals since the last reset (atomic counters).
MatmulStats matmul_stats();
void reset_matmul_stats();

}  // namespace sp::kernels
