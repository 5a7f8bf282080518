// gpu_t5_step: one full training step (forward + backward of the loss, every parameter
// trainable, no optimizer update) of our T5 on cuda:0, at the shapes
// bench/torch_gpu_bench.py gives transformers' T5ForConditionalGeneration:
//   t5-v1_1-base sizes (d_model 768, d_ff 2048, 12 + 12 layers, 12 heads x 64, gated-gelu,
//   untied head), vocab 32128, random init, train mode (dropout 0.1);
//   batch 8, inputs 512 tokens, targets 128 tokens.
// Args: bf16 (1: the model in bf16, 0: f32). The figure is the median step time (CUDA events
// on the backend's stream around each whole step, host work included); counters:
// tokens_per_s = 8 * (512 + 128) / step time, matmul_TFLOPs = the matmul FLOPs the step ran
// (kernels::matmul_stats) per second, GFLOP_step.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>

#include "autograd/ops.h"
#include "bench/cuda/gpu_bench.h"
#include "models/t5/t5_model.h"
#include "tensor/kernels.h"
#include "tensor/kernels/matmul_stats.h"

namespace sp {
namespace {

constexpr int64_t kBatch = 8, kInput = 512, kTarget = 128, kVocab = 32128;

T5Config step_config() {
  T5Config c = T5Config::preset("t5-v1_1-base");
  c.vocab_size = kVocab;
  return c;
}

// One model per dtype for the process: weights initialised on the host (seeded), then
// moved to cuda:0 with Module::to.
T5ForConditionalGeneration& model_for(DType dt) {
  static std::map<DType, std::unique_ptr<T5ForConditionalGeneration>> cache;
  static Generator dropout_gen(5);
  auto& m = cache[dt];
  if (!m) {
    Generator gen(1234);
    m = std::make_unique<T5ForConditionalGeneration>(step_config(), dt, &dropout_gen);
    m->init_weights(&gen);
    m->to(Device::cuda(0));
    m->train(true);
  }
  return *m;
}

void gpu_t5_step(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const DType dt = state.range(0) ? DType::bf16 : DType::f32;
  T5ForConditionalGeneration& m = model_for(dt);
  const std::vector<Tensor> params = m.parameters();
  Generator gen(99);
  T5Inputs in;
  in.input_ids = randint({kBatch, kInput}, 2, 32000, DType::i64, &gen).to(Device::cuda(0));
  in.labels = randint({kBatch, kTarget}, 2, 32000, DType::i64, &gen).to(Device::cuda(0));
  auto step = [&] {
    for (Tensor p : params) p.zero_grad();
    Tensor loss = m.forward(in).loss;
    loss.backward();
  };
  // Each step is tens of milliseconds or more: fewer samples keep the family short.
  gpu_bench::time_launches(state, step, /*samples=*/11);
  const double median_s = state.counters["median_us"] * 1e-6;
  state.counters["tokens_per_s"] = static_cast<double>(kBatch * (kInput + kTarget)) / median_s;
  // FLOPs of one step, counted on a step of its own.
  kernels::reset_matmul_stats();
  step();
  const double flops = static_cast<double>(kernels::matmul_stats().flops);
  state.counters["GFLOP_step"] = flops * 1e-9;
  state.counters["matmul_TFLOPs"] = flops / median_s * 1e-12;
  state.SetLabel(std::string("t5-v1_1-base ") + dtype_name(dt) + " train step B=8 S=512 T=128");
}

SP_GPU_BENCHMARK(gpu_t5_step)->ArgNames({"bf16"})->Arg(1)->Arg(0);

}  // namespace
}  // namespace sp
