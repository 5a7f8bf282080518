#pragma once
// The options `softprompt pretrain` and `softprompt lm-adapt` share (PretrainOptions).
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>

#include "experiments/cli/command.h"
#include "experiments/data/pretraining.h"

namespace sp::cli {

struct PretrainFlags {
  PretrainOptions options;
  double lr = 0;  // 0: the schedule's default (rsqrt: 1, the others: 1e-3)
  std::string progress = "auto";
  std::string device = "cpu";
  bool no_token_cache = false;
};

inline void add_pretrain_flags(CLI::App& sub, PretrainFlags& f) {
  PretrainOptions& o = f.options;
  sub.add_option("--data", o.data_dir, "Corpus directory (softprompt data build-corpus)")
      ->required();
  sub.add_option("--out", o.out_dir,
                 "Output directory; a rerun resumes from its checkpoints. The model lands in "
                 "OUT/model (Hugging Face format)")
      ->required();
  sub.add_option("--steps", o.steps, "Optimizer steps")->check(positive())->capture_default_str();
  sub.add_option("--batch-size", o.batch_size, "Packed rows per micro-batch")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--grad-accumulation", o.grad_accumulation, "Micro-batches per step")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--inputs-length", o.inputs_length, "Encoder tokens per row")
      ->check(CLI::Range(int64_t{4}, int64_t{1} << 16))
      ->capture_default_str();
  sub.add_option("--targets-length", o.targets_length,
                 "Decoder tokens per row; 0: what the objective needs for --inputs-length")
      ->capture_default_str();
  sub.add_option("--shuffle-buffer", o.shuffle_buffer,
                 "Training examples shuffled together after they are made (2 to 100000); 0: none")
      ->capture_default_str();
  OptimizerSpec& opt = o.optimizer;
  sub.add_option("--optimizer", opt.name,
                 "adafactor (T5X's pretraining settings), adamw (beta 0.9/0.999, eps 1e-8) or sgd")
      ->check(CLI::IsMember({"adafactor", "adamw", "sgd"}))
      ->capture_default_str();
  sub.add_option("--schedule", opt.schedule.kind,
                 "rsqrt: LR / sqrt(max(step, --rsqrt-offset)) (T5); constant: LR; linear, "
                 "cosine: LR decayed to reach 0 at step --steps, after the last update")
      ->check(CLI::IsMember({"rsqrt", "constant", "linear", "cosine"}))
      ->capture_default_str();
  sub.add_option("--lr", f.lr,
                 "Learning rate (rsqrt: its numerator, default 1; the others: default 1e-3)")
      ->check(positive());
  sub.add_option("--rsqrt-offset", opt.schedule.rsqrt_offset,
                 "Steps of constant rate before the decay")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--rsqrt-start-step", opt.schedule.rsqrt_start_step,
                 "rsqrt: continue a schedule that has this many steps behind it, as T5's LM "
                 "adaptation continued T5 1.1's 1M pretraining steps")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_option("--warmup-steps", opt.schedule.warmup_steps, "Linear warm-up steps from 0")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_option("--weight-decay", opt.weight_decay,
                 "adafactor: T5X's decay rate (not scaled by LR); adamw: decoupled; sgd: L2, "
                 "added to the gradient; 0: off")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_option("--clip", opt.clip_global_norm, "Global gradient-norm clipping; 0: off")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_option("--z-loss", o.z_loss, "T5X's z-loss coefficient (1e-4 in T5X); 0: off")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_option("--dropout", o.dropout,
                 "Dropout rate while training (lm-adapt: replaces the --model checkpoint's own)")
      ->check(probability())
      ->capture_default_str();
  sub.add_option("--seed", o.seed, "Seed for data order, noise, initialisation, dropout")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_option("--eval-every", o.eval_every,
                 "Steps between validation losses (0: at the end only)")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_option("--eval-examples", o.eval_examples, "Fixed validation examples")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--log-every", o.log_every, "Steps between metrics lines")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--checkpoint-every", o.checkpoint_every,
                 "Steps between checkpoints (0: at "
                 "each evaluation)")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_option("--max-seconds", o.max_seconds, "Training time budget; 0: none")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_flag("--no-token-cache", f.no_token_cache,
               "Tokenize the corpus in memory only, not through its token cache (DATA/tokens)");
  sub.add_option("--device", f.device, "cpu, cuda or cuda:N")->capture_default_str();
  sub.add_option("--progress", f.progress, "auto, live, plain or off")
      ->check(CLI::IsMember({"auto", "live", "plain", "off"}))
      ->capture_default_str();
}

inline int run_pretrain_flags(PretrainFlags& f) {
  PretrainOptions& o = f.options;
  o.device = device_from_flag(o.init_checkpoint.empty() ? "pretrain" : "lm-adapt", f.device);
  o.cache_tokens = !f.no_token_cache;
  o.optimizer.lr = f.lr > 0 ? f.lr : o.optimizer.schedule.kind == "rsqrt" ? 1.0 : 1e-3;
  o.progress = f.progress == "live"    ? ProgressMode::live
               : f.progress == "plain" ? ProgressMode::plain
               : f.progress == "off"   ? ProgressMode::off
                                       : ProgressMode::automatic;
  const PretrainResult r = run_pretraining(o);
  std::cout << r.to_json().dump(2) << "\n";
  return 0;
}

}  // namespace sp::cli
