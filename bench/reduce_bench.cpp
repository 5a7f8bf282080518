// Sums over rows (the last dim), over leading dims (column sums, as for bias and broadcast
// gradients) and over everything. Memory-bound: GB/s of the input read once (the output is
// small), to be read beside copy_f32 from the same run.
#include <benchmark/benchmark.h>

#include "tensor/kernels.h"

namespace sp {
namespace {

// Args: rows, cols, which (0: sum over cols, 1: sum over rows = column sums, 2: all).
void reduce_sum(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1), which = state.range(2);
  const Tensor x = Tensor::full({rows, cols}, 0.5);
  const std::vector<int64_t> dims = which == 0 ? std::vector<int64_t>{1}
                                    : which == 1 ? std::vector<int64_t>{0}
                                                 : std::vector<int64_t>{};
  for (auto _ : state) {
    Tensor s = kernels::reduce(ReduceOp::sum, x, dims, false);
    benchmark::DoNotOptimize(s.data_ptr());
  }
  const int64_t out = which == 0 ? rows : which == 1 ? cols : 1;
  const double bytes = static_cast<double>((rows * cols + out) * 4);
  state.counters["GBps"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(which == 0 ? "rows" : which == 1 ? "columns" : "all");
}

}  // namespace
}  // namespace sp

BENCHMARK(sp::reduce_sum)
    ->Name("reduce_sum")
    ->ArgNames({"rows", "cols", "which"})
    ->Args({16384, 1024, 0})
    ->Args({16384, 1024, 1})
    ->Args({4096, 32128, 1})
    ->Args({16384, 1024, 2})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
