// One PEFT training step per method at the same shape: peak memory and step time.
//
//   peft_step/<dtype>/<method>   train-mode forward + backward + Adafactor update of the
//                                method's parameters (the backbone frozen, except for
//                                model_tuning, which trains every weight)
//
// Model: T5 1.1 small shapes (d_model 512, d_ff 1024, 6 heads x 64, 8 + 8 layers, gated-gelu,
// untied, vocab 32128; random init), backbone in f32 or bf16 (method parameters f32 always).
// Batch 8, 128 input tokens, 8 target tokens; dropout 0.1 (train mode).
// Methods at their usual settings: prompt_tuning p = 20 (so the encoder sees 148 positions),
// prefix_tuning p = 20 in every attention layer, lora rank 8 on q and v, ia3 on k, v, wo,
// ln_tuning every norm (kept f32 in a bf16 backbone), model_tuning everything. Adafactor as the
// paper (factored, no parameter scaling, lr 0.3 is irrelevant to the cost).
//
// Counters:
//   peak_MiB      the CPU allocator's high-water mark during one steady-state step, counting
//                 every live tensor: weights, optimizer state, activations, gradients
//   step_MiB      peak_MiB minus what was live before the step (weights + optimizer state +
//                 method parameters): the step's own activations and gradients
//   state_MiB     optimizer state
//   trainable     the method's trainable parameter count
//   cpu_s_step    process CPU seconds (all threads) per step
// The reference a reader compares with is the first row of each dtype: model tuning, the
// paper's baseline, in the same run.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <map>
#include <memory>
#include <string>

#include "autograd/ops.h"
#include "experiments/training/dtype_policy.h"
#include "models/t5/t5_model.h"
#include "nn/optim/adafactor.h"
#include "nn/peft/peft.h"
#include "tensor/allocator.h"

namespace sp {
namespace {

constexpr int64_t kBatch = 8, kInput = 128, kTarget = 8;

nlohmann::json method_settings(const std::string& method) {
  if (method == "prompt_tuning") return {{"length", 20}};
  if (method == "prefix_tuning") return {{"length", 20}};
  if (method == "lora") return {{"rank", 8}};
  return nlohmann::json::object();
}

// Process CPU seconds (all threads): steadier than wall time on a shared machine.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double mib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

void peft_step(benchmark::State& state, DType dt, const std::string& method_name) {
  bool known = false;
  for (const auto& info : peft_methods()) known = known || info.name == method_name;
  if (!known) {
    state.SkipWithError(("method " + method_name + " is not registered").c_str());
    for (auto _ : state) {}
    return;
  }
  T5Config c = T5Config::preset("t5-v1_1-small");
  c.vocab_size = 32128;
  c.dropout_rate = 0.1;
  Generator gen(1234);
  auto model = std::make_unique<T5ForConditionalGeneration>(c, DType::f32, &gen);
  model->init_weights(&gen);
  model->train();
  auto method = make_peft(method_name, method_settings(method_name));
  method->attach(*model);
  // As a run with a bf16 backbone: the frozen weights bf16, what trains f32, the model
  // computing in bf16 (model tuning: mixed precision, f32 weights with bf16 matmuls).
  if (dt == DType::bf16) use_bf16_backbone(*model);
  const NamedTensors params = method->trainable();
  std::vector<Tensor> tensors;
  std::vector<std::string> names;
  for (const auto& [n, t] : params) {
    tensors.push_back(t);
    names.push_back(n);
  }
  optim::AdafactorOptions opts;
  opts.multiply_by_parameter_scale = false;
  optim::Adafactor opt(tensors, names, opts);

  Generator data(99);
  T5Inputs in;
  in.input_ids = randint({kBatch, kInput}, 2, 32000, DType::i64, &data);
  in.labels = randint({kBatch, kTarget}, 2, 32000, DType::i64, &data);
  auto step = [&] {
    Tensor loss = model->forward(in).loss;
    loss.backward();
    opt.step(0.3);
    opt.zero_grad();
  };
  step();  // warm-up: primitive caches, the allocator's blocks, optimizer state
  int64_t state_bytes = 0;
  for (const auto& [n, t] : opt.state_dict()) state_bytes += t.nbytes();
  const int64_t before = cpu_memory_stats().current_bytes;
  reset_cpu_peak_memory();
  int64_t peak = 0;
  const double cpu0 = cpu_seconds();
  for (auto _ : state) {
    step();
    peak = std::max(peak, cpu_memory_stats().peak_bytes);
  }
  state.counters["cpu_s_step"] = (cpu_seconds() - cpu0) / static_cast<double>(state.iterations());
  state.counters["peak_MiB"] = mib(peak);
  state.counters["step_MiB"] = mib(peak - before);
  state.counters["state_MiB"] = mib(state_bytes);
  state.counters["trainable"] = static_cast<double>(method->attached_count().trainable);
  state.SetLabel(method_name + " " + dtype_name(dt) + " backbone");
}

[[maybe_unused]] const bool registered = [] {
  for (DType dt : {DType::f32, DType::bf16})
    for (const char* m :
         {"model_tuning", "prompt_tuning", "prefix_tuning", "lora", "ia3", "ln_tuning"})
      benchmark::RegisterBenchmark(("peft_step/" + std::string(dtype_name(dt)) + "/" + m).c_str(),
                                   peft_step, dt, std::string(m))
          ->Iterations(2)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  return true;
}();

}  // namespace
}  // namespace sp
