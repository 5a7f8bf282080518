// Matmul through the public op against a bare oneDNN primitive on the same layouts.
//   matmul_f32 / matmul_bf16:          sp::matmul(a, b), inputs made once; includes the
//                                       primitive-cache lookup and the output allocation
//   onednn_raw_f32 / onednn_raw_bf16:   a oneDNN matmul primitive built once and executed:
//                                       the ceiling (raw bf16 is skipped on CPUs without
//                                       AVX-512, where oneDNN 2.6 has no bf16 matmul and
//                                       matmul_bf16 runs widened to f32)
// FLOPs: 2 * M * N * K per iteration (counter GFLOPS, a rate). Target: ours >= 0.9x raw.
// Args {M, N, K, tA, tB}: tA / tB = 1 pass a / b as transposed views (x.mT() of a dense x).
// Shapes: 64^3 (the dispatch overhead shows); 1024^3; T5 feed-forward layers at batch 8 x 356
// tokens = 2848 rows: forward y = x @ W^T (tB = 1) for t5-small (d_model 512, d_ff 1024 gated /
// 2048 v1.0) and t5-base (768, 2048); dX = dY @ W; dW = dY^T @ X (tA = 1).
#include <benchmark/benchmark.h>

#include <oneapi/dnnl/dnnl.hpp>

#include "autograd/ops/linalg.h"
#include "tensor/cpu/onednn.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

// A dense [rows, cols] tensor, or the transposed view of a dense [cols, rows] one.
Tensor make_operand(int64_t rows, int64_t cols, bool transposed, DType dt, uint64_t seed) {
  const Shape shape = transposed ? Shape{cols, rows} : Shape{rows, cols};
  Tensor f = Tensor::empty(shape, DType::f32);
  float* p = f.data<float>();
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = 0; i < f.numel(); ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = static_cast<float>(static_cast<double>(s >> 40) / 16777216.0 - 0.5);
  }
  Tensor t = kernels::cast(f, dt);
  return transposed ? kernels::transpose(t, 0, 1) : t;
}

void set_flops(benchmark::State& state) {
  const double flops = 2.0 * state.range(0) * state.range(1) * state.range(2);
  state.counters["GFLOPS"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void ours(benchmark::State& state, DType dt) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const Tensor a = make_operand(M, K, state.range(3) != 0, dt, 1);
  const Tensor b = make_operand(K, N, state.range(4) != 0, dt, 2);
  for (auto _ : state) {
    Tensor c = matmul(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  set_flops(state);
}

void raw(benchmark::State& state, DType dt) {
  using dnnl::memory;
  if (dt == DType::bf16 && !cpu::onednn_has_bf16_matmul()) {
    state.SkipWithError(
        "oneDNN 2.6 has no bf16 matmul on this CPU (it needs AVX-512): matmul_bf16 runs "
        "widened to f32 here, its reference is onednn_raw_f32");
    return;
  }
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const Tensor a = make_operand(M, K, state.range(3) != 0, dt, 1);
  const Tensor b = make_operand(K, N, state.range(4) != 0, dt, 2);
  Tensor c = Tensor::empty({M, N}, dt);
  const memory::data_type mdt = cpu::onednn_dtype(dt, "bench");
  const memory::desc a_md({M, K}, mdt, {a.strides()[0], a.strides()[1]});
  const memory::desc b_md({K, N}, mdt, {b.strides()[0], b.strides()[1]});
  const memory::desc c_md({M, N}, mdt, {N, 1});
  dnnl::engine& eng = cpu::onednn_engine();
  const dnnl::matmul prim(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), eng));
  memory am(a_md, eng, a.data_ptr()), bm(b_md, eng, b.data_ptr()), cm(c_md, eng, c.data_ptr());
  dnnl::stream& s = cpu::onednn_stream();
  for (auto _ : state) {
    prim.execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    s.wait();
    benchmark::ClobberMemory();
  }
  set_flops(state);
}

void matmul_f32(benchmark::State& state) { ours(state, DType::f32); }
void matmul_bf16(benchmark::State& state) { ours(state, DType::bf16); }
void onednn_raw_f32(benchmark::State& state) { raw(state, DType::f32); }
void onednn_raw_bf16(benchmark::State& state) { raw(state, DType::bf16); }

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "N", "K", "tA", "tB"});
  b->Args({64, 64, 64, 0, 0});  // dispatch overhead: ~1 us of math
  b->Args({1024, 1024, 1024, 0, 0});
  b->Args({2848, 1024, 512, 0, 1});  // t5-small gated wi: x @ W^T
  b->Args({2848, 512, 1024, 0, 1});  // t5-small gated wo
  b->Args({2848, 2048, 512, 0, 1});  // t5-small v1.0 wi
  b->Args({2848, 512, 2048, 0, 1});  // t5-small v1.0 wo
  b->Args({2848, 2048, 768, 0, 1});  // t5-base wi
  b->Args({2848, 768, 2048, 0, 1});  // t5-base wo
  b->Args({2848, 1024, 512, 0, 0});  // dX = dY @ W for t5-small wo
  b->Args({512, 1024, 2848, 1, 0});  // dW = dY^T @ X for t5-small wo
  b->Unit(benchmark::kMillisecond);
  b->UseRealTime();
}

BENCHMARK(matmul_f32)->Apply(shapes);
BENCHMARK(onednn_raw_f32)->Apply(shapes);
BENCHMARK(matmul_bf16)->Apply(shapes);
BENCHMARK(onednn_raw_bf16)->Apply(shapes);

}  // namespace
}  // namespace sp
