// `softprompt pretrain`: a T5 from scratch with span corruption on a built corpus
// (experiments/data/pretraining.h).
#include <functional>
#include <memory>

#include "experiments/cli/command.h"
#include "experiments/cli/pretrain_flags.h"
#include "models/t5/config.h"

namespace sp::cli {
namespace {

std::function<int()> setup_pretrain(CLI::App& sub) {
  auto f = std::make_shared<PretrainFlags>();
  f->options.objective = PretrainObjective::span_corruption;
  std::string presets;
  for (const std::string& n : T5Config::preset_names())
    presets += (presets.empty() ? "" : ", ") + n;
  sub.add_option("--preset", f->options.preset, "Model shape: " + presets)
      ->check(CLI::IsMember(T5Config::preset_names()))
      ->capture_default_str();
  sub.add_option("--config", f->options.config_path,
                 "A config.json for the model shape (wins over --preset); vocab_size comes from "
                 "the corpus's tokenizer");
  add_pretrain_flags(sub, *f);
  sub.add_option("--noise-density", f->options.noise_density,
                 "Span corruption: share of tokens masked")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub.add_option("--mean-noise-span-length", f->options.mean_noise_span_length,
                 "Span corruption: mean length of a masked span")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  return [f] { return run_pretrain_flags(*f); };
}

}  // namespace

SP_REGISTER_COMMAND(pretrain,
                    "Pretrain a T5 from scratch with span corruption on a corpus; writes a Hugging "
                    "Face checkpoint",
                    setup_pretrain);

}  // namespace sp::cli
