// `softprompt lm-adapt`: continue a checkpoint with the prefix-LM objective ("LM
// adaptation", experiments/data/pretraining.h).
#include <functional>
#include <memory>

#include "experiments/cli/command.h"
#include "experiments/cli/pretrain_flags.h"

namespace sp::cli {
namespace {

std::function<int()> setup_lm_adapt(CLI::App& sub) {
  auto f = std::make_shared<PretrainFlags>();
  f->options.objective = PretrainObjective::prefix_lm;
  sub.add_option("--model", f->options.init_checkpoint,
                 "The checkpoint directory to continue (config.json, model.safetensors, "
                 "spiece.model)")
      ->required()
      ->check(CLI::ExistingDirectory);
  add_pretrain_flags(sub, *f);
  return [f] { return run_pretrain_flags(*f); };
}

// The name has a hyphen, which SP_REGISTER_COMMAND cannot spell.
const CommandRegistrar lm_adapt_registrar(
    "lm-adapt",
    "Continue a T5 checkpoint with the prefix-LM objective (LM adaptation); writes a Hugging "
    "Face checkpoint",
    setup_lm_adapt);

}  // namespace
}  // namespace sp::cli
