// Softmax and fused cross-entropy. Memory-bound: the figure is GB/s of the minimum bytes
// moved, to be read beside copy_f32 (read + write of one f32 tensor) from the same run;
// the target is at least half of copy_f32's bandwidth above L2 sizes.
//   softmax:        reads x [R, D], writes y [R, D]
//   add_softmax:    attention's softmax(scores + position bias), t5-small's encoder shapes:
//                   scores [8, 6, 356, 356], bias [1, 6, 356, 356] broadcast over the batch;
//                   fused: 1 = kernels::add_softmax, 0 = add then softmax (the reference).
//                   Bytes: scores read, probabilities written (the bias is mostly cached)
//   cross_entropy:  forward reads logits [R, V] and targets [R] (i64), writes loss and
//                   lse [R] (f32); fwd_bwd adds the backward, which reads logits, dloss,
//                   lse and targets and writes dlogits [R, V]
#include <benchmark/benchmark.h>

#include "tensor/kernels.h"

namespace sp {
namespace {

DType bench_dtype(int64_t code) { return code == 1 ? DType::bf16 : DType::f32; }

// Values of a realistic spread (logits within a few units), deterministic.
Tensor bench_logits(const Shape& shape, DType dt) {
  Tensor x = Tensor::empty(shape, DType::f32);
  float* p = x.data<float>();
  uint32_t s = 12345;
  for (int64_t i = 0; i < x.numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = static_cast<float>(s >> 8) * (8.0f / 16777216.0f) - 4.0f;
  }
  return kernels::cast(x, dt);
}

// Args: rows, cols, dtype (0: f32, 1: bf16).
void softmax_forward(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const DType dt = bench_dtype(state.range(2));
  const Tensor x = bench_logits({rows, cols}, dt);
  for (auto _ : state) {
    Tensor y = kernels::softmax(x, -1, false);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  const double bytes = 2.0 * static_cast<double>(rows * cols * dtype_size(dt));
  state.counters["GBps"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(dtype_name(dt)) + " forward");
}

// Args: dtype (0: f32, 1: bf16), fused (0: add then softmax, 1: add_softmax).
void add_softmax(benchmark::State& state) {
  const DType dt = bench_dtype(state.range(0));
  const bool fused = state.range(1) != 0;
  const Tensor scores = bench_logits({8, 6, 356, 356}, dt);
  const Tensor bias = bench_logits({1, 6, 356, 356}, dt);
  for (auto _ : state) {
    Tensor y = fused ? kernels::add_softmax(scores, bias)
                     : kernels::softmax(kernels::binary(BinaryOp::add, scores, bias), -1, false);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  const double bytes = 2.0 * static_cast<double>(scores.numel() * dtype_size(dt));
  state.counters["GBps"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(dtype_name(dt)) + (fused ? " fused" : " add, then softmax"));
}

// Args: rows, vocab, dtype (0: f32, 1: bf16), with_backward (0: forward, 1: forward + backward).
void cross_entropy_step(benchmark::State& state) {
  const int64_t rows = state.range(0), vocab = state.range(1);
  const DType dt = bench_dtype(state.range(2));
  const bool backward = state.range(3) != 0;
  const Tensor logits = bench_logits({rows, vocab}, dt);
  Tensor targets = Tensor::empty({rows}, DType::i64);
  for (int64_t r = 0; r < rows; ++r) targets.data<int64_t>()[r] = (r * 7919) % vocab;
  const Tensor dloss = Tensor::full({rows}, 1.0 / static_cast<double>(rows));
  for (auto _ : state) {
    kernels::CrossEntropyResult r = kernels::cross_entropy(logits, targets, -100, 1e-4);
    benchmark::DoNotOptimize(r.loss.data_ptr());
    if (backward) {
      Tensor d = kernels::cross_entropy_backward(dloss, logits, targets, r.lse, -100, 1e-4);
      benchmark::DoNotOptimize(d.data_ptr());
    }
  }
  const double big = static_cast<double>(rows * vocab * dtype_size(dt));
  const double small = static_cast<double>(rows * (8 + 4 + 4));
  // Forward: logits, then targets (8), loss (4), lse (4) per row; the backward adds logits read
  // and dlogits written, then targets (8), dloss (4), lse (4) per row.
  const double bytes = backward ? 3 * big + 2 * small : big + small;
  state.counters["GBps"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(dtype_name(dt)) + (backward ? " forward+backward" : " forward"));
}

}  // namespace
}  // namespace sp

BENCHMARK(sp::softmax_forward)
    ->Name("softmax")
    ->ArgNames({"rows", "cols", "bf16"})
    ->Args({8 * 6 * 356, 356, 0})
    ->Args({4096, 32128, 0})
    ->Args({8 * 6 * 356, 356, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(sp::add_softmax)
    ->Name("add_softmax")
    ->ArgNames({"bf16", "fused"})
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(sp::cross_entropy_step)
    ->Name("cross_entropy")
    ->ArgNames({"rows", "V", "bf16", "bwd"})
    ->Args({64, 32128, 0, 0})
    ->Args({2048, 32128, 0, 0})
    ->Args({64, 32128, 0, 1})
    ->Args({2048, 32128, 0, 1})
    ->Args({2048, 32128, 1, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
