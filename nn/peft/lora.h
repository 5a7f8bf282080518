#pragma once
// LoRA (Hu et al. 2021) as Hugging Face PEFT implements it: each targeted Linear computes
//   y = x W^T + scale * dropout(x) A^T B^T,   scale = alpha / rank,
// with A: [rank, in] drawn like PEFT's kaiming_uniform_(a = sqrt(5)), i.e. uniform in
// +-1/sqrt(in), and B: [out, rank] zeros, so the model starts exactly as the base model.
// A and B are f32 whatever the backbone dtype: the input is cast to f32 for the low-rank
// path, and a bf16 layer's output is added to the update in f32 and rounded once (PEFT
// does the same).
//
// Settings: rank (8), alpha (8), dropout (0), target_modules (["q", "v"], PEFT's T5
// default: names matched on their last components) or target_regex (a whole-name regex,
// overrides the list), seed (0, for A's init and the dropout masks).
//
// Parameters are named "<linear name>.lora_A.weight" / ".lora_B.weight", PEFT's names
// without its "base_model.model." prefix (lora_hf.h writes PEFT's files).
//
// merge() folds scale * B A into each W and bypasses the adapters (inference at the base
// model's cost); unmerge() subtracts it again: the exact inverse up to rounding in W's
// dtype (f32: ~1e-7 relative; a bf16 backbone loses the update's low bits, so merge a
// bf16 model only for inference). Loading factors into a merged method unmerges the old
// ones and merges the loaded ones, so W always carries the factors the method holds.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/peft/peft.h"
#include "nn/peft/target_modules.h"
#include "tensor/random.h"

namespace sp {

class LoraAdapter : public LinearAdapter {
 public:
  LoraAdapter(int64_t in, int64_t out, int64_t rank, double scale, double dropout,
              std::shared_ptr<Generator> gen);
  // x: [..., in] -> [..., out]
  Tensor forward(const Tensor& x, const Linear& base) const override;
  // scale * B A: [out, in] f32, outside the graph.
  Tensor delta_weight() const;

  Tensor A;  // [rank, in] f32, trainable
  Tensor B;  // [out, rank] f32, trainable
  double scale;
  double dropout;
  bool merged = false;

 private:
  std::shared_ptr<Generator> gen_;
};

class Lora : public PeftMethod {
 public:
  static std::vector<PeftSetting> settings();
  explicit Lora(const nlohmann::json& settings);
  std::string name() const override { return "lora"; }
  void attach(PeftHost& host) override;
  NamedTensors trainable() const override;
  std::vector<std::pair<std::string, Generator*>> generators() const override;
  void load_state(const NamedTensors& tensors) override;

  // W += scale * B A in every wrapped layer; the adapters then pass through. Idempotent.
  void merge();
  // W -= scale * B A; the adapters are live again. Idempotent.
  void unmerge();
  bool merged() const { return merged_; }

  int64_t rank() const { return rank_; }
  double alpha() const { return alpha_; }
  double dropout() const { return dropout_; }
  const TargetModules& targets() const { return targets_; }
  // The wrapped layers by module name, in the model's order.
  const std::vector<std::pair<std::string, std::shared_ptr<LoraAdapter>>>& adapters() const {
    return adapters_;
  }

 private:
  int64_t rank_;
  double alpha_;
  double dropout_;
  uint64_t seed_;
  TargetModules targets_;
  bool merged_ = false;
  std::vector<std::pair<std::string, std::shared_ptr<LoraAdapter>>> adapters_;
  std::shared_ptr<Generator> dropout_gen_;  // shared by every adapter; made at attach
  std::vector<Linear*> linears_;
};

}  // namespace sp
