#pragma once
// Pretraining a T5 on a built corpus (corpus_builder.h) with span corruption from scratch,
// or continuing a checkpoint with prefix LM ("LM adaptation"): the logic behind
// `softprompt pretrain`, `softprompt lm-adapt` and the experiment runner's pretrain /
// lm_adapt stages.
//
//   PretrainOptions o;
//   o.data_dir = "corpus"; o.out_dir = "runs/pretrain"; o.preset = "t5-mini";
//   o.steps = 2000; o.batch_size = 32; o.inputs_length = 128;
//   PretrainResult r = run_pretraining(o);      // r.model_dir: a Hugging Face checkpoint
//
// Data: the corpus's train split, tokenized once, streamed by SpanCorruptionStream or
// PrefixLmStream (seeded by seed, resumable), shuffled in blocks of shuffle_buffer examples
// (shuffled_stream.h), packed several examples per row (packing.h; span-corruption
// examples fill a row each). Validation: eval_examples examples of the validation split
// with its documents in an order drawn from a fixed seed (pretraining_validation_examples),
// so every run and every seed is scored on the same examples, and they sample the whole
// split, not its first documents (a corpus file is often sorted: WordNet's by part of
// speech); the loss is the mean cross-entropy per target token. The baseline: a unigram
// model of train targets drawn the same way (unigram_baseline.h) scored on the same
// validation examples.
//
// Output in out_dir: the trainer's metrics.jsonl and checkpoints/ (a rerun with the same
// out_dir resumes exactly), model/ (config.json, model.safetensors, spiece.model: what
// load_t5 reads), and pretrain.json (the options, the baseline, the validation loss
// before training, the eval history, tokens/s), written atomically at the end.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "experiments/data/tokenized_documents.h"
#include "experiments/objectives/example.h"
#include "experiments/objectives/special_tokens.h"
#include "experiments/spec/spec.h"
#include "experiments/training/trainer.h"

namespace sp {

enum class PretrainObjective { span_corruption, prefix_lm };
const char* objective_name(PretrainObjective objective);
PretrainObjective objective_from_name(const std::string& name);  // throws on others

struct PretrainOptions {
  PretrainObjective objective = PretrainObjective::span_corruption;
  std::string data_dir;  // a built corpus: train.txt, validation.txt, spiece.model
  std::string out_dir;
  // Continue this Hugging Face checkpoint (its spiece.model when present, else the
  // corpus's, must match the model's vocabulary); empty: a new model from preset or
  // config_path with vocab_size from the tokenizer (rounded up to a multiple of 128).
  std::string init_checkpoint;
  // The tokenizer (a spiece.model); empty: init_checkpoint's when it has one, else the
  // corpus's. The runner passes its corpus's copy of the spec's tokenizer.
  std::string spiece_model;
  // Token ids cached beside the corpus (data_dir/tokens, experiments/data/token_cache.h), so
  // later stages on the same corpus and tokenizer map them instead of tokenizing again.
  bool cache_tokens = true;
  // Where the model, its batches and the optimizer state live (the model is built or
  // loaded on the host and moved once; checkpoints are written to the host).
  Device device = Device::cpu();
  std::string preset = "t5-tiny";
  std::string config_path;  // a config.json; wins over preset
  // The dropout rate while training, over init_checkpoint's own (hub configs say 0.1); T5
  // 1.1 pretrained without dropout.
  double dropout = 0.0;

  int64_t steps = 1000;
  int64_t batch_size = 32;  // packed rows per micro-batch
  int64_t grad_accumulation = 1;
  int64_t inputs_length = 128;
  // 0: span corruption's targets for inputs_length (span_corruption_lengths: T5's
  // random_spans_helper where that is exact), or inputs_length for prefix LM.
  int64_t targets_length = 0;
  // Span corruption's noise: share of tokens masked and mean length of a masked span (T5:
  // 0.15 and 3).
  double noise_density = 0.15;
  double mean_noise_span_length = 3.0;
  // Training examples are returned in a random order within blocks of this many (2 to
  // kMaxShuffleBlock), as T5 shuffles examples in a buffer; 0: in the order they are made.
  int64_t shuffle_buffer = 1000;

  // The optimizer and its schedule (make_optimizer, experiments/training/optimizer_factory.h)
  // and the gradient clipping; by default T5's pretraining: Adafactor with T5X's defaults at
  // 1 / sqrt(max(step, 1e4)).
  OptimizerSpec optimizer = t5_pretraining_optimizer();
  // T5X's auxiliary z-loss, z_loss * log(Z)^2 per target token, added to the training loss
  // (the validation loss stays plain cross-entropy); 0: off.
  double z_loss = 0;

  uint64_t seed = 0;         // data order, noise, initialisation, dropout
  int64_t eval_every = 100;  // 0: only at the end
  int64_t eval_examples = 256;
  int64_t log_every = 10;
  int64_t checkpoint_every = 0;       // 0: at every evaluation
  double max_seconds = 0;             // a time budget for training; 0: none
  int64_t baseline_examples = 20000;  // train examples the unigram baseline counts
  ProgressMode progress = ProgressMode::automatic;
  bool verbose = true;  // a few lines on stderr (corpus, model, baseline)
};

struct PretrainResult {
  TrainResult train;
  std::string model_dir;        // the exported checkpoint
  double unigram_baseline = 0;  // validation cross-entropy of the unigram model (nats)
  double initial_loss = 0;      // validation loss before the first step (fresh runs)
  std::vector<std::pair<int64_t, double>> validation_loss;  // (step, loss) of every eval
  double tokens_per_second = 0;  // non-padding input + target tokens over training time
  int64_t parameters = 0;
  int64_t vocab_size = 0;  // the model's embedding rows
  nlohmann::json to_json() const;
};

PretrainResult run_pretraining(const PretrainOptions& options);

// The validation examples run_pretraining scores: options.eval_examples examples of its
// objective from docs in an order drawn from a fixed seed (the same for every run).
std::vector<Seq2SeqExample> pretraining_validation_examples(
    const PretrainOptions& options, std::shared_ptr<const TokenizedDocuments> docs,
    const SpecialTokens& vocab);

}  // namespace sp
