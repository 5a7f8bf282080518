// End-to-end T5 steps at the prompt-tuning shapes, beside the matmul ceiling of this machine.
//
//   t5_step/<model>/<dtype>/forward        eval forward with the loss, no graph
//   t5_step/<model>/<dtype>/prompt_tuning  train-mode forward (dropout 0.1) + backward to the
//                                          prompt only: the backbone is frozen, the prompt
//                                          [100, d_model] f32 is the only leaf that needs a
//                                          gradient (no optimizer update: it is 51k-77k values)
//   t5_matmul_ceiling/<dtype>/MxNxK         a bare oneDNN matmul primitive (y = x W^T) at the
//                                          model's feed-forward shape: the ceiling
// Models: T5 1.1 LM-adapted shapes, random init (init_weights), vocab 32128, gated-gelu,
// untied head: small = d_model 512, d_ff 1024, 6 heads x 64, 8 + 8 layers; base = 768,
// 2048, 12 heads x 64, 12 + 12 layers. Batch 8: 100 prompt vectors + 256 embedded tokens =
// S = 356 encoder positions, T = 8 target tokens.
//
// Counters: tokens_per_s counts B * (S + T) = 2912 tokens per step (bench/compare_hf.py
// counts the same); GFLOPS are the matmul FLOPs the step ran (kernels::matmul_stats(): 2 *
// batch * M * N * K over every matmul call) per second; pct_ceiling = GFLOPS / the ceiling
// measured in this process for the same dtype at the model's feed-forward shape;
// cpu_s_step = process CPU seconds (all threads) per step, steadier than the time on a busy
// machine; flops_vs_formula = counted / analytic_matmul_flops() (1.00 means the step ran exactly
// the matmuls the formula below expects: no weight gradients, nothing recomputed).
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "models/t5/t5_model.h"
#include "tensor/cpu/onednn.h"
#include "tensor/kernels.h"
#include "tensor/kernels/matmul_stats.h"

namespace sp {
namespace {

constexpr int64_t kBatch = 8, kPrompt = 100, kInput = 256, kTarget = 8;
constexpr int64_t kEnc = kPrompt + kInput;  // S = 356

T5Config model_config(const std::string& size) {
  T5Config c = T5Config::preset(size == "small" ? "t5-v1_1-small" : "t5-v1_1-base");
  c.vocab_size = 32128;
  return c;
}

// Matmul FLOPs (2 per multiply-add) of one step, with N_e = B*S and N_d = B*T rows,
// inner = H*d_kv, F = d_ff, gated feed-forward (wi_0, wi_1, wo):
//   encoder layer:  4 projections 2*N_e*D*inner*4 + scores and weights*values 2*2*B*H*S*S*d_kv
//                   + feed-forward 3 * 2*N_e*D*F
//   decoder layer:  self-attention 2*N_d*D*inner*4 + 2*2*B*H*T*T*d_kv; cross-attention q, o
//                   2*N_d*D*inner*2, k, v on the encoder output 2*N_e*D*inner*2, scores and
//                   weights*values 2*2*B*H*T*S*d_kv; feed-forward 3 * 2*N_d*D*F
//   head:           2*N_d*D*V
// Backward with frozen weights computes only input gradients: dX = dY W for every
// projection (the forward's FLOPs again) and both operands' gradients of the two
// activation-activation matmuls (twice their forward FLOPs), except where nothing upstream
// needs a gradient: decoder layer 0's self-attention sees only the (frozen) target embeddings,
// and so do its cross-attention queries (no dX for q, only dK for the scores).
double analytic_matmul_flops(const T5Config& c, bool backward) {
  const double B = kBatch, S = kEnc, T = kTarget, D = c.d_model, F = c.d_ff, V = c.vocab_size;
  const double H = c.num_heads, dk = c.d_kv, inner = H * dk;
  const double ne = B * S, nd = B * T;
  const double ff_mults = c.is_gated() ? 3 : 2;
  const double enc_proj = 8 * ne * D * inner + 2 * ff_mults * ne * D * F;
  const double enc_attn = 4 * B * H * S * S * dk;
  const double dec_self_proj = 8 * nd * D * inner, dec_self_attn = 4 * B * H * T * T * dk;
  const double dec_cross_proj = 4 * nd * D * inner + 4 * ne * D * inner;
  const double dec_cross_attn = 4 * B * H * T * S * dk;
  const double dec_ff = 2 * ff_mults * nd * D * F;
  const double head = 2 * nd * D * V;
  const double L = c.num_layers, Ld = c.num_decoder_layers;
  const double fwd =
      L * (enc_proj + enc_attn) +
      Ld * (dec_self_proj + dec_self_attn + dec_cross_proj + dec_cross_attn + dec_ff) + head;
  if (!backward) return fwd;
  const double dec_q_proj = 2 * nd * D * inner;
  const double bwd = L * (enc_proj + 2 * enc_attn) +
                     (Ld - 1) * (dec_self_proj + 2 * dec_self_attn) +
                     Ld * (dec_cross_proj + 2 * dec_cross_attn + dec_ff) + head -
                     (dec_q_proj + dec_cross_attn / 2);  // layer 0: no dX for q, no dQ
  return fwd + bwd;
}

// One random-init model per (size, dtype) for the whole run: building t5-base takes seconds.
T5ForConditionalGeneration& model_for(const std::string& size, DType dt) {
  static std::map<std::pair<std::string, DType>, std::unique_ptr<T5ForConditionalGeneration>> cache;
  auto& m = cache[{size, dt}];
  if (!m) {
    Generator gen(1234);
    m = std::make_unique<T5ForConditionalGeneration>(model_config(size), dt);
    m->init_weights(&gen);
    m->requires_grad_(false);
  }
  return *m;
}

// The best time of a bare oneDNN y = x W^T at [M, K] x [N, K]^T, in GFLOP/s; measured once
// per (dtype, shape) in this process. bf16 on a CPU whose oneDNN has no bf16 matmul (no
// AVX-512) is measured in f32, the kernels its matmuls are widened to.
double matmul_ceiling_gflops(DType dt, int64_t M, int64_t N, int64_t K) {
  if (dt == DType::bf16 && !cpu::onednn_has_bf16_matmul()) dt = DType::f32;
  static std::map<std::vector<int64_t>, double> cache;
  const std::vector<int64_t> key = {static_cast<int64_t>(dt), M, N, K};
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  using dnnl::memory;
  Generator gen(7);
  const Tensor a = uniform({M, K}, -1, 1, DType::f32, &gen).to(dt);
  const Tensor w = uniform({N, K}, -1, 1, DType::f32, &gen).to(dt);
  Tensor c = Tensor::empty({M, N}, dt);
  const memory::data_type mdt = cpu::onednn_dtype(dt, "bench");
  const memory::desc a_md({M, K}, mdt, {K, 1});
  const memory::desc b_md({K, N}, mdt, {1, K});  // W^T as a strided view
  const memory::desc c_md({M, N}, mdt, {N, 1});
  dnnl::engine& eng = cpu::onednn_engine();
  const dnnl::matmul prim(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), eng));
  memory am(a_md, eng, a.data_ptr()), bm(b_md, eng, w.data_ptr()), cm(c_md, eng, c.data_ptr());
  dnnl::stream& s = cpu::onednn_stream();
  double best = 1e30;
  for (int i = 0; i < 12; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    prim.execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    s.wait();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i >= 2) best = std::min(best, sec);  // two warm-up runs
  }
  return cache[key] = 2.0 * M * N * K / best * 1e-9;
}

// User + system CPU seconds of the whole process (every thread): on a loaded machine the
// wall time mostly measures the other processes, this less so.
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct StepInputs {
  Tensor prompt;     // [P, D] f32, the trainable leaf
  Tensor input_ids;  // [B, 256]
  Tensor labels;     // [B, T]
};

StepInputs make_inputs(const T5Config& c) {
  Generator gen(99);
  StepInputs in;
  in.prompt = uniform({kPrompt, c.d_model}, -0.5, 0.5, DType::f32, &gen);
  in.prompt.requires_grad_(true);
  in.input_ids = randint({kBatch, kInput}, 2, 32000, DType::i64, &gen);
  in.labels = randint({kBatch, kTarget}, 2, 32000, DType::i64, &gen);
  return in;
}

// prompt: [P, D], ids: [B, 256] -> loss (scalar f32) with inputs_embeds [B, P + 256, D].
Tensor step_loss(const T5ForConditionalGeneration& m, const StepInputs& in) {
  Tensor prompt = in.prompt.unsqueeze(0).expand({kBatch, -1, -1});
  T5Inputs x;
  x.inputs_embeds = cat({prompt.to(m.dtype()), m.embed(in.input_ids)}, 1);
  x.labels = in.labels;
  return m.forward(x).loss;
}

void t5_step(benchmark::State& state, const std::string& size, DType dt, bool train) {
  T5ForConditionalGeneration& m = model_for(size, dt);
  const T5Config& c = m.config();
  m.train(train);
  StepInputs in = make_inputs(c);
  auto step = [&] {
    if (train) {
      Tensor loss = step_loss(m, in);
      loss.backward();
      benchmark::DoNotOptimize(in.prompt.grad().data_ptr());
      in.prompt.zero_grad();
    } else {
      NoGradGuard no_grad;
      Tensor loss = step_loss(m, in);
      benchmark::DoNotOptimize(loss.data_ptr());
    }
  };
  step();  // warm-up: primitive caches, allocator
  kernels::reset_matmul_stats();
  const double cpu0 = process_cpu_seconds();
  const auto wall0 = std::chrono::steady_clock::now();
  for (auto _ : state) step();
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  const double iters = static_cast<double>(state.iterations());
  state.counters["cpu_s_step"] = (process_cpu_seconds() - cpu0) / iters;
  const double flops = static_cast<double>(kernels::matmul_stats().flops) / iters;
  const double ceiling = matmul_ceiling_gflops(dt, kBatch * kEnc, c.d_ff, c.d_model);
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(kBatch * (kEnc + kTarget)),
                         benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOPS"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP_step"] = flops * 1e-9;
  state.counters["ceiling_GFLOPS"] = ceiling;
  state.counters["flops_vs_formula"] = flops / analytic_matmul_flops(c, train);
  state.SetLabel(size + " " + dtype_name(dt) + (train ? " prompt-tuning step" : " forward"));
  // A plain number (a rate counter would print "/s"), from the loop's own wall time.
  state.counters["pct_ceiling"] = 100.0 * flops * 1e-9 * iters / wall_s / ceiling;
}

void t5_matmul_ceiling(benchmark::State& state, DType dt, int64_t M, int64_t N, int64_t K) {
  double g = 0;
  for (auto _ : state) g = matmul_ceiling_gflops(dt, M, N, K);
  state.counters["GFLOPS"] = g;
}

[[maybe_unused]] const bool registered = [] {
  for (const char* size : {"small", "base"}) {
    const T5Config c = model_config(size);
    const int iters = std::string(size) == "small" ? 3 : 2;
    for (DType dt : {DType::f32, DType::bf16}) {
      const std::string name = std::string(size) + "/" + dtype_name(dt);
      benchmark::RegisterBenchmark(("t5_step/" + name + "/forward").c_str(), t5_step, size, dt,
                                   false)
          ->Iterations(iters)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("t5_step/" + name + "/prompt_tuning").c_str(), t5_step, size,
                                   dt, true)
          ->Iterations(iters)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("t5_matmul_ceiling/" + std::string(dtype_name(dt)) + "/" +
                                    std::to_string(kBatch * kEnc) + "x" + std::to_string(c.d_ff) +
                                    "x" + std::to_string(c.d_model))
                                       .c_str(),
                                   t5_matmul_ceiling, dt, kBatch * kEnc, c.d_ff, c.d_model)
          ->Iterations(1)
          ->Unit(benchmark::kMillisecond);
    }
  }
  return true;
}();

}  // namespace
}  // namespace sp
