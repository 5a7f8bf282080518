// The whole pipeline on a micro spec: corpus from WordNet, a tiny T5 pretrained and
// LM-adapted for a few steps, prompt tuning on wordnet_wic for two prompt lengths, eval,
// reports; then a rerun that does nothing. Needs Debian's wordnet-base (skipped without).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "experiments/report/results.h"
#include "experiments/runner/runner.h"
#include "experiments/spec/spec.h"
#include "temp_dir.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMicroSpec = R"(name: micro
model:
  preset: t5-tiny
tokenizer:
  source: train
  vocab_size: 1000
  input_sentence_size: 20000
corpus:
  builtin: wordnet
stages:
  pretrain:
    steps: 4
    batch_size: 4
    inputs_length: 32
  lm_adapt:
    steps: 2
    batch_size: 4
    inputs_length: 32
  tune:
    task: wordnet_wic
    peft:
      method: prompt_tuning
      init: class_labels
    steps: 4
    batch_size: 4
    inputs_length: 48
    targets_length: 4
    eval_every: 2
    checkpoint_every: 2
    max_train_examples: 64
    max_eval_examples: 16
  eval:
    splits: [validation]
    max_examples: 16
sweep:
  grid:
    stages.tune.peft.length: [1, 3]
)";

TEST(RunnerEndToEnd, MicroSpecRunsThenRerunSkipsEverything) {
  if (!fs::exists("/usr/share/wordnet")) GTEST_SKIP() << "wordnet-base is not installed";
  TempDir tmp;  // removed even when an assertion ends the test early
  const fs::path dir = tmp.path;
  const ExperimentSpec spec = parse_spec(kMicroSpec, (dir / "micro.yaml").string());
  ASSERT_EQ(spec.trials.size(), 2u);
  RunOptions o;
  o.out_dir = (dir / "run").string();
  std::ostringstream log;
  o.log = &log;
  ASSERT_EQ(run_experiment(spec, o), 0) << log.str();
  const auto results = read_results((dir / "run/results.jsonl").string());
  ASSERT_EQ(results.size(), 4u) << log.str();
  for (const ResultRecord& r : results) {
    EXPECT_TRUE(r.metrics.count("accuracy")) << to_json(r).dump();
    EXPECT_GT(r.trainable_params, 0);
    EXPECT_LT(r.trainable_share, 0.01);
  }
  EXPECT_EQ(results[0].trainable_params * 3, results[2].trainable_params);  // 1 vs 3 positions
  int pretrain_dirs = 0;
  for (const auto& e : fs::directory_iterator(dir / "run/stages"))
    if (e.path().filename().string().starts_with("pretrain-")) {
      ++pretrain_dirs;
      EXPECT_TRUE(fs::exists(e.path() / "DONE"));
    }
  EXPECT_EQ(pretrain_dirs, 1);
  EXPECT_NE(read_text(dir / "run/report.md").find("## Results"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir / "run/summary.csv"));
  for (const char* curve : {"curve-pretrain.svg", "curve-lm_adapt.svg", "curve-tune_wordnet_wic.svg"})
    EXPECT_TRUE(fs::exists(dir / "run" / curve)) << curve;

  const std::string before = read_text(dir / "run/results.jsonl");
  std::ostringstream log2;
  o.log = &log2;
  ASSERT_EQ(run_experiment(spec, o), 0) << log2.str();
  EXPECT_EQ(read_text(dir / "run/results.jsonl"), before);
  EXPECT_NE(log2.str().find("trial 2/2"), std::string::npos);
  EXPECT_EQ(log2.str().find(" -> stages/"), std::string::npos) << log2.str();  // nothing ran
}

}  // namespace
}  // namespace sp
