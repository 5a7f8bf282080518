#pragma once
// Where a stage's model and tokenizer come from: the previous stage's checkpoint directory
// (a Hugging Face layout with spiece.model), else the trial's ModelSpec (a checkpoint
// directory, or a preset initialised at random from init_seed) and TokenizerSpec.
#include <memory>
#include <string>

#include "experiments/spec/spec.h"
#include "models/t5/t5_model.h"

namespace sp {

class T5Tokenizer;

// The checkpoint directory a stage starting at model_dir loads: model_dir itself, else the
// spec's checkpoint; empty for a preset (random initialisation).
std::string base_checkpoint_dir(const std::string& model_dir, const ModelSpec& model);

// The T5 config of a preset with the spec's config keys over it.
T5Config preset_config(const ModelSpec& model);

// Throws "[run] model.device: <device> is not usable: <reason>" when the spec asks for a
// CUDA device this process cannot use (no CUDA build, no GPU, index out of range).
void check_model_device(const ModelSpec& model);

// The model in f32 with dropout_rate set to dropout, on model.device (weights are loaded
// on the host, then moved once; PEFT attached afterwards follows the model's device);
// dropout_gen drives its dropout (may be null; must outlive the model).
std::unique_ptr<T5ForConditionalGeneration> load_stage_model(const std::string& model_dir,
                                                             const ModelSpec& model, double dropout,
                                                             Generator* dropout_gen);

// The spiece.model a stage starting at model_dir uses: TokenizerSpec source "file"'s path;
// otherwise <checkpoint>/spiece.model (a trained vocabulary travels with the checkpoints of
// the stages that trained on it). Throws naming what is missing.
std::string stage_tokenizer_file(const std::string& model_dir, const ModelSpec& model,
                                 const TokenizerSpec& tokenizer);

// The tokenizer of stage_tokenizer_file, which must fit the model's embedding.
T5Tokenizer load_stage_tokenizer(const std::string& model_dir, const ModelSpec& model,
                                 const TokenizerSpec& tokenizer);

}  // namespace sp
