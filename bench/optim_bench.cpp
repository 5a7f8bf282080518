// Optimizer steps against the memory-bandwidth reference of the same run (copy_f32 in
// elementwise_bench.cpp: run both, e.g. --benchmark_filter='adafactor_step|adamw_step|copy_f32').
// An update is memory-bound (tens of flops per element), so the figure is GB/s of the
// minimum bytes an update must move, per element:
//   adafactor_step, factored [R, C] (R, C >= 128): read x, g; write x: 12 bytes (the
//     moments are R + C floats). Ours reads g three times and x twice (the moments, RMS(U),
//     the update), so 24 bytes move: half the copy bandwidth is the ceiling.
//   adafactor_step, unfactored ([100, 512], a prompt): read x, g, v; write x, v: 20 bytes
//     (ours: 32 bytes, two passes).
//   adamw_step: read x, g, m, v; write x, m, v: 28 bytes, one pass.
// Args: rows, cols. 32128 x 512 is T5's embedding (factored, 64 MiB per tensor), 512 x 2048
// a T5-small feed-forward matrix, 100 x 512 the paper's prompt.
#include <benchmark/benchmark.h>

#include "nn/optim/adafactor.h"
#include "nn/optim/adamw.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

Tensor leaf_full(const Shape& shape, double value) {
  Tensor t = Tensor::full(shape, value);
  t.requires_grad_(true);
  return t;
}

void set_bandwidth(benchmark::State& state, double bytes) {
  state.counters["GBps"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void adafactor_step(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  Tensor x = leaf_full({rows, cols}, 0.5);
  x.set_grad(Tensor::full({rows, cols}, 0.01));
  optim::Adafactor opt({x}, {}, {});
  opt.step(1e-3);  // allocates the state outside the timed loop
  for (auto _ : state) {
    opt.step(1e-3);
    benchmark::ClobberMemory();
  }
  const bool factored = optim::Adafactor::factored_axes(x.shape(), opt.options()).has_value();
  set_bandwidth(state, static_cast<double>(rows * cols) * (factored ? 12.0 : 20.0));
}

void adamw_step(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  Tensor x = leaf_full({rows, cols}, 0.5);
  x.set_grad(Tensor::full({rows, cols}, 0.01));
  optim::AdamW opt({x});
  opt.step(1e-3);
  for (auto _ : state) {
    opt.step(1e-3);
    benchmark::ClobberMemory();
  }
  set_bandwidth(state, static_cast<double>(rows * cols) * 28.0);
}

}  // namespace
}  // namespace sp

BENCHMARK(sp::adafactor_step)
    ->Name("adafactor_step")
    ->Args({32128, 512})
    ->Args({512, 2048})
    ->Args({100, 512})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(sp::adamw_step)
    ->Name("adamw_step")
    ->Args({512, 2048})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
