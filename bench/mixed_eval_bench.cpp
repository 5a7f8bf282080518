// Greedy decoding of a model whose weights are f32 and whose compute is bf16: what a bf16
// run's model tuning evaluates between its steps.
//
//   mixed_eval/uncached     every decoded token casts every f32 weight to bf16 again
//   mixed_eval/cached       the same inside a WeightCastCache (nn/mixed_dtype.h): each
//                           weight cast once per evaluation, as the runner evaluates
//   mixed_eval/stored_bf16  the reference: the backbone stored in bf16
//                           (use_bf16_for_inference), no cast at all
//
// Model: T5 1.1 small shapes (d_model 512, 8 + 8 layers, vocab 32128; random init), batch
// 8 of 64 input tokens, 16 new tokens. Counter ms_per_token: wall time per decoding step
// (a row that reaches EOS early would make a step cheaper; the count is of real steps).
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <string>

#include "autograd/grad_mode.h"
#include "experiments/training/dtype_policy.h"
#include "models/t5/generation.h"
#include "models/t5/t5_model.h"
#include "nn/mixed_dtype.h"

namespace sp {
namespace {

constexpr int64_t kBatch = 8, kInput = 64, kNewTokens = 16;

enum class Variant { uncached, cached, stored_bf16 };

void mixed_eval(benchmark::State& state, Variant variant) {
  T5Config c = T5Config::preset("t5-v1_1-small");
  c.vocab_size = 32128;
  Generator gen(99);
  T5ForConditionalGeneration model(c, DType::f32, &gen);
  model.init_weights(&gen);
  model.eval();
  if (variant == Variant::stored_bf16)
    use_bf16_for_inference(model);
  else
    model.set_compute_dtype(DType::bf16);
  std::vector<int64_t> ids(kBatch * kInput);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = 3 + static_cast<int64_t>((i * 7919) % 30000);
  const Tensor input = Tensor::from_vector(ids, Shape{kBatch, kInput});
  const Tensor mask = Tensor::ones(Shape{kBatch, kInput}, DType::i64);
  GenerateOptions options;
  options.max_new_tokens = kNewTokens;
  NoGradGuard no_grad;
  int64_t steps = 0;
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::vector<int64_t>> out;
    if (variant == Variant::cached) {
      WeightCastCache casts;
      out = greedy_generate(model, input, mask, options);
    } else {
      out = greedy_generate(model, input, mask, options);
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    size_t longest = 0;
    for (const auto& row : out) longest = std::max(longest, row.size());
    steps += static_cast<int64_t>(longest);
    benchmark::DoNotOptimize(out);
  }
  state.counters["ms_per_token"] = steps > 0 ? 1e3 * seconds / static_cast<double>(steps) : 0;
}

[[maybe_unused]] const bool registered = [] {
  for (const auto& [name, v] :
       {std::pair{"uncached", Variant::uncached}, std::pair{"cached", Variant::cached},
        std::pair{"stored_bf16", Variant::stored_bf16}})
    benchmark::RegisterBenchmark((std::string("mixed_eval/") + name).c_str(), mixed_eval, v)
        ->Iterations(2)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  return true;
}();

}  // namespace
}  // namespace sp
