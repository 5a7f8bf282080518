#pragma once
// (IA)^3 (Liu et al. 2022) as Hugging Face PEFT implements it for T5: learned vectors that
// rescale the keys and values (the outputs of each attention's k and v) and the
// feed-forward activation (the input of DenseReluDense.wo), initialised to ones so the
// model starts exactly as the base model.
//
//   attention (k, v):  y = (x W^T) * l,   l: [out, 1]  ("<name>.ia3_l", PEFT's shape)
//   feed-forward (wo): y = (x * l) W^T,   l: [1, in]
//
// The vectors are f32; the scaled tensor is computed in f32 and cast back to the layer's
// dtype, so a bf16 backbone works as in PEFT.
//
// Settings: target_modules (["k", "v", "wo"], PEFT's T5 default) or target_regex (a
// whole-name regex, overrides the list), feedforward_modules (["wo"]: targets whose input,
// not output, is scaled; a list matched on whole trailing name components like
// target_modules, where PEFT also takes a regex string and matches any name suffix).
//
// merge() folds l into the weights (W * l per row, or per column for feed-forward ones)
// and bypasses the adapters; unmerge() divides it out again (exact up to rounding unless
// an entry of l is 0). Loading vectors into a merged method divides the old ones out and
// folds the loaded ones in.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/peft/peft.h"
#include "nn/peft/target_modules.h"

namespace sp {

class Ia3Adapter : public LinearAdapter {
 public:
  Ia3Adapter(int64_t in, int64_t out, bool feedforward);
  // x: [..., in] -> [..., out]
  Tensor forward(const Tensor& x, const Linear& base) const override;

  Tensor l;  // [out, 1], or [1, in] when feedforward; f32, trainable
  bool feedforward;
  bool merged = false;
};

class Ia3 : public PeftMethod {
 public:
  static std::vector<PeftSetting> settings();
  explicit Ia3(const nlohmann::json& settings);
  std::string name() const override { return "ia3"; }
  void attach(PeftHost& host) override;
  NamedTensors trainable() const override;
  void load_state(const NamedTensors& tensors) override;

  void merge();    // W <- W * l; idempotent
  void unmerge();  // W <- W / l; idempotent
  bool merged() const { return merged_; }
  const TargetModules& targets() const { return targets_; }
  const TargetModules& feedforward_modules() const { return feedforward_; }  // empty: none
  const std::vector<std::pair<std::string, std::shared_ptr<Ia3Adapter>>>& adapters() const {
    return adapters_;
  }

 private:
  TargetModules targets_;
  TargetModules feedforward_;
  bool merged_ = false;
  std::vector<std::pair<std::string, std::shared_ptr<Ia3Adapter>>> adapters_;
  std::vector<Linear*> linears_;
};

}  // namespace sp
