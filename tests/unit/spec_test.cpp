// Experiment specs: parsing and defaults, sweeps, --set, variables, extends, every error
// message (FILE:LINE:COL and did-you-mean), stage hashes, and a dry run of every shipped
// spec in experiments/specs/.
#include "experiments/spec/spec.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "experiments/data/sha256.h"
#include "experiments/spec/map_reader.h"
#include "experiments/spec/scalar.h"
#include "experiments/spec/trial_parse.h"
#include "experiments/training/optimizer_factory.h"
#include "nn/optim/adafactor.h"
#include "test_util.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

// A scratch directory per test, removed afterwards.
class SpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sp_spec_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "ckpt");
    fs::create_directories(dir_ / "RTE");
    for (const char* file : {"train.jsonl", "val.jsonl", "test.jsonl"})  // the split files
      std::ofstream(dir_ / "RTE" / file);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name) << text;
  }
  ExperimentSpec parse(const std::string& text, std::vector<std::string> sets = {},
                       bool check_paths = true, std::map<std::string, std::string> env = {}) {
    SpecLoadOptions options;
    options.sets = std::move(sets);
    options.check_paths = check_paths;
    options.read_environment = false;
    options.env = std::move(env);
    return parse_spec(text, path("t.yaml"), options);
  }
  // A minimal valid spec: tune + eval on RTE from a checkpoint directory.
  // A preset pretrained on the built-in corpus, then tuned on RTE.
  std::string pretrain_then_tune_spec() const {
    return "model: {preset: t5-tiny}\n"
           "tokenizer: {vocab_size: 500}\n"
           "corpus: {builtin: wordnet}\n"
           "stages:\n"
           "  pretrain: {steps: 100}\n"
           "  tune: {task: rte, data_dir: " +
           path("RTE") + ", steps: 10}\n";
  }

  std::string base_spec(const std::string& tune_extra = "", const std::string& top_extra = "") {
    return "name: t\n"
           "model:\n"
           "  checkpoint: " +
           path("ckpt") + "\n" + top_extra +
           "stages:\n"
           "  tune:\n"
           "    task: rte\n"
           "    data_dir: " +
           path("RTE") +
           "\n"
           "    peft:\n"
           "      method: prompt_tuning\n" +
           tune_extra + "  eval: {}\n";
  }

  fs::path dir_;
};

std::vector<std::string> ids(const ExperimentSpec& spec) {
  std::vector<std::string> out;
  for (const Trial& t : spec.trials) out.push_back(t.id);
  return out;
}

TEST_F(SpecTest, ParsesWithThePapersDefaults) {
  const ExperimentSpec spec = parse(base_spec());
  EXPECT_EQ(spec.name, "t");
  ASSERT_EQ(spec.trials.size(), 1u);
  const Trial& t = spec.trials[0];
  EXPECT_EQ(t.id, "default");
  EXPECT_EQ(t.stage_order(), (std::vector<StageKind>{StageKind::tune, StageKind::eval}));
  EXPECT_EQ(t.model.checkpoint, path("ckpt"));
  EXPECT_EQ(t.model.dtype, DType::f32);
  EXPECT_TRUE(t.model.device.is_cpu());
  EXPECT_EQ(t.tokenizer.source, "checkpoint");
  const TuneStage& tune = *t.tune;
  EXPECT_EQ(tune.task.name, "rte");
  EXPECT_EQ(tune.steps, 30000);
  EXPECT_EQ(tune.batch_size, 32);
  EXPECT_EQ(tune.inputs_length, 512);
  EXPECT_EQ(tune.optimizer.name, "adafactor");
  EXPECT_DOUBLE_EQ(tune.optimizer.lr, 0.3);
  EXPECT_EQ(tune.optimizer.schedule.kind, "constant");
  EXPECT_DOUBLE_EQ(tune.optimizer.weight_decay, 1e-5);
  EXPECT_DOUBLE_EQ(tune.optimizer.decay_rate, 0.8);
  EXPECT_FALSE(tune.optimizer.multiply_by_parameter_scale);
  EXPECT_DOUBLE_EQ(tune.optimizer.clipping_threshold, 1.0);
  // ... and the optimizer the trainer builds from them is the paper's Adafactor.
  Tensor prompt = Tensor::zeros({100, 8});
  prompt.requires_grad_(true);
  const auto opt = make_optimizer(tune.optimizer, {{"prompt", prompt}}, tune.steps);
  const auto* adafactor = dynamic_cast<const optim::Adafactor*>(opt.get());
  ASSERT_NE(adafactor, nullptr);
  EXPECT_FALSE(adafactor->options().multiply_by_parameter_scale);
  EXPECT_TRUE(adafactor->options().factored);
  EXPECT_DOUBLE_EQ(adafactor->options().decay_rate, 0.8);
  EXPECT_EQ(adafactor->options().clipping_threshold, std::optional<double>(1.0));
  EXPECT_EQ(adafactor->options().weight_decay_rate, std::optional<double>(1e-5));
  EXPECT_FALSE(adafactor->options().beta1.has_value());
  EXPECT_EQ(adafactor->options().step_offset, 0);
  ASSERT_TRUE(opt->schedule().has_value());
  EXPECT_EQ(opt->schedule()->str(), "constant(0.3)");
  EXPECT_DOUBLE_EQ(tune.dropout, 0.1);
  EXPECT_DOUBLE_EQ(tune.z_loss, 1e-4);
  EXPECT_EQ(tune.eval_every, 1000);
  EXPECT_EQ(tune.peft.method, "prompt_tuning");
  EXPECT_TRUE(tune.peft.settings.contains("length"));  // resolved by the registry
  EXPECT_EQ(t.eval->splits, std::vector<std::string>{"validation"});
  EXPECT_EQ(t.eval->method, "greedy");
  EXPECT_EQ(t.eval->max_decode_length, tune.targets_length);
  EXPECT_EQ(t.seed, tune.seed);
  EXPECT_EQ(t.tune->depends_on, t.origin_hash());
  EXPECT_EQ(t.eval->depends_on, t.tune->hash);
  EXPECT_EQ(t.stage_hash(StageKind::tune).size(), 16u);
  EXPECT_THROW(t.stage_hash(StageKind::pretrain), Error);
}

TEST_F(SpecTest, PretrainingDefaultsFollowT5) {
  const ExperimentSpec spec = parse(
      "model: {preset: t5-tiny}\n"
      "tokenizer: {vocab_size: 2000}\n"
      "corpus: {builtin: wordnet}\n"
      "stages:\n"
      "  pretrain: {steps: 100}\n"
      "  lm_adapt: {steps: 50, inputs_length: 128}\n");
  const Trial& t = spec.trials[0];
  EXPECT_EQ(spec.name, "t");  // the file's stem
  EXPECT_EQ(t.stage_order(), (std::vector<StageKind>{StageKind::pretrain, StageKind::lm_adapt}));
  EXPECT_EQ(t.pretrain->targets_length, 114);  // random_spans_helper(512) agrees here
  EXPECT_EQ(t.pretrain->optimizer.schedule.kind, "rsqrt");
  EXPECT_DOUBLE_EQ(t.pretrain->optimizer.lr, 1.0);
  EXPECT_TRUE(t.pretrain->optimizer.multiply_by_parameter_scale);
  EXPECT_DOUBLE_EQ(t.pretrain->dropout, 0.0);
  EXPECT_EQ(t.lm_adapt->targets_length, 128);
  EXPECT_EQ(t.lm_adapt->depends_on, t.pretrain->hash);
  EXPECT_EQ(t.tokenizer.source, "train");
  EXPECT_EQ(t.model.config.at("vocab_size"), 2176);  // 2000 + 100 sentinels, to 128
  // Span corruption's targets follow from its inputs: what its pieces give (float32 counts
  // round the noise up at 172: 40 targets, where random_spans_helper says 38).
  const std::string base =
      "model: {preset: t5-tiny}\ntokenizer: {vocab_size: 2000}\ncorpus: {builtin: wordnet}\n";
  EXPECT_EQ(parse(base + "stages: {pretrain: {steps: 1, inputs_length: 172}}\n")
                .trials[0]
                .pretrain->targets_length,
            40);
  EXPECT_THROW_MSG(parse(base + "stages: {pretrain: {steps: 1, targets_length: 50}}\n"),
                   "stages.pretrain.targets_length applies to prefix_lm only");
  EXPECT_THROW_MSG(parse(base + "stages: {pretrain: {steps: 1, inputs_length: 3}}\n"),
                   "t.yaml:4:46: stages.pretrain.inputs_length must be >= 4 for pretraining");
  EXPECT_EQ(parse(base + "stages: {pretrain: {steps: 1, objective: prefix_lm, inputs_length: 4, "
                         "targets_length: 2}}\n")
                .trials[0]
                .pretrain->targets_length,
            2);
  // A preset that a pretraining stage starts from is initialised from that stage's seed.
  EXPECT_THROW_MSG(parse("model: {preset: t5-tiny, init_seed: 3}\n" + base.substr(25) +
                         "stages: {lm_adapt: {steps: 1}}\n"),
                   "model.init_seed is not used: the lm_adapt stage initialises the preset from "
                   "stages.lm_adapt.seed");
  EXPECT_EQ(t.model.config.at("d_model"), 64);
  EXPECT_EQ(model_vocab_size(32000, 100), 32128);
}

// run_pretraining refuses inputs_length below 4 for either objective: a prefix-LM pretrain or
// an lm_adapt stage of 2 or 3 input tokens passed the spec and failed when the stage ran.
TEST_F(SpecTest, PretrainingStagesNeedFourInputTokens) {
  const std::string base =
      "model: {preset: t5-tiny}\ntokenizer: {vocab_size: 2000}\ncorpus: {builtin: wordnet}\n";
  EXPECT_THROW_MSG(parse(base + "stages: {lm_adapt: {steps: 1, inputs_length: 3}}\n"),
                   "t.yaml:4:46: stages.lm_adapt.inputs_length must be >= 4 for pretraining");
  EXPECT_THROW_MSG(
      parse(base + "stages: {pretrain: {steps: 1, objective: prefix_lm, inputs_length: 3}}\n"),
      "stages.pretrain.inputs_length must be >= 4 for pretraining");
  EXPECT_EQ(parse(base + "stages: {lm_adapt: {steps: 1, inputs_length: 4}}\n")
                .trials[0]
                .lm_adapt->inputs_length,
            4);
}

// tokenizer.source train trains the vocabulary with the corpus a pretrain or lm_adapt stage
// builds, and the stages after them read it from their model: a preset tuned without one
// had no tokenizer at all ("[run] no tokenizer") once the tune stage ran.
TEST_F(SpecTest, ATrainedTokenizerNeedsAPretrainingStage) {
  const std::string tune = "stages: {tune: {task: rte, data_dir: " + path("RTE") + "}}\n";
  EXPECT_THROW_MSG(parse("model: {preset: t5-tiny}\ncorpus: {builtin: wordnet}\n" + tune),
                   "tokenizer.source is train, which needs a pretrain or lm_adapt stage");
  EXPECT_THROW_MSG(parse("model: {preset: t5-tiny}\ntokenizer: {source: train}\n"
                         "corpus: {builtin: wordnet}\n" +
                         tune),
                   "t.yaml:2:21: tokenizer.source is train");
  write("spiece.model", "x");
  EXPECT_EQ(
      parse("model: {preset: t5-tiny}\ntokenizer: {path: " + path("spiece.model") + "}\n" + tune)
          .trials[0]
          .tokenizer.source,
      "file");
}

// Pretraining and LM adaptation tokenize with T5's 100 sentinels and size a new model's
// embedding from the tokenizer (pieces + 100, to a multiple of 128), whatever the spec
// said: extra_ids 200 gave a 1152-row model that the next stage's 1200-id tokenizer did
// not fit, and model.config.vocab_size 2048 gave 1152 rows too.
TEST_F(SpecTest, PretrainingKeepsT5sSentinelsAndSizesThePresetsVocabulary) {
  const std::string corpus = "corpus: {builtin: wordnet}\n";
  EXPECT_THROW_MSG(
      parse("model: {preset: t5-tiny}\ntokenizer: {vocab_size: 500, extra_ids: 200}\n" + corpus +
            "stages: {pretrain: {steps: 1}}\n"),
      "t.yaml:2:41: tokenizer.extra_ids must be 100 with a pretrain or lm_adapt stage");
  EXPECT_THROW_MSG(parse("model: {checkpoint: " + path("ckpt") + "}\ntokenizer: {extra_ids: 0}\n" +
                         corpus + "stages: {lm_adapt: {steps: 1}}\n"),
                   "tokenizer.extra_ids must be 100 with a pretrain or lm_adapt stage");
  EXPECT_EQ(parse(base_spec("", "tokenizer: {extra_ids: 0}\n")).trials[0].tokenizer.extra_ids, 0);
  EXPECT_THROW_MSG(parse("model: {preset: t5-tiny, config: {vocab_size: 2048}}\n"
                         "tokenizer: {vocab_size: 500}\n" +
                         corpus + "stages: {lm_adapt: {steps: 1}}\n"),
                   "t.yaml:1:47: model.config.vocab_size is set by the pretraining stage");
  // Other config keys still apply, and a preset tuned without pretraining takes it.
  EXPECT_EQ(parse("model: {preset: t5-tiny, config: {d_ff: 128}}\ntokenizer: {vocab_size: 500}\n" +
                  corpus + "stages: {pretrain: {steps: 1}}\n")
                .trials[0]
                .model.config.at("d_ff"),
            128);
  write("spiece.model", "x");
  EXPECT_EQ(parse("model: {preset: t5-tiny, config: {vocab_size: 2048}}\ntokenizer: {path: " +
                  path("spiece.model") + "}\nstages: {tune: {task: rte, data_dir: " + path("RTE") +
                  "}}\n")
                .trials[0]
                .model.config.at("vocab_size"),
            2048);
}

// Keys of model that nothing reads: a checkpoint's weights are its own (init_seed was
// accepted and ignored), and every stage builds its model with its own dropout (a
// model.config.dropout_rate changed the stages' hashes and nothing they computed).
TEST_F(SpecTest, ModelKeysThatNoStageReadsAreRefused) {
  EXPECT_THROW_MSG(parse(base_spec("", "  init_seed: 3\n")),
                   "model.init_seed applies to presets only");
  EXPECT_THROW_MSG(parse("model: {preset: t5-tiny, config: {dropout_rate: 0.3}}\n"
                         "tokenizer: {vocab_size: 500}\ncorpus: {builtin: wordnet}\n"
                         "stages: {pretrain: {steps: 1}}\n"),
                   "t.yaml:1:49: model.config.dropout_rate is set by each stage's dropout");
  write("spiece.model", "x");
  const std::string tune_only = "tokenizer: {path: " + path("spiece.model") +
                                "}\nstages: {tune: {task: rte, data_dir: " + path("RTE") + "}}\n";
  EXPECT_THROW_MSG(parse("model: {preset: t5-tiny, config: {dropout_rate: 0.3}}\n" + tune_only),
                   "model.config.dropout_rate is set by each stage's dropout");
  EXPECT_EQ(parse("model: {preset: t5-tiny, init_seed: 3}\n" + tune_only).trials[0].model.init_seed,
            3u);
}

TEST_F(SpecTest, ZeroStepsSkipAStage) {
  const ExperimentSpec spec = parse(base_spec(), {"stages.lm_adapt.steps=0"});
  EXPECT_FALSE(spec.trials[0].lm_adapt.has_value());
}

TEST_F(SpecTest, GridZipAndSeedsExpand) {
  const ExperimentSpec spec = parse(base_spec("",
                                              "sweep:\n"
                                              "  grid:\n"
                                              "    stages.tune.peft.length: [1, 5, 20]\n"
                                              "    stages.tune.batch_size: [8, 16]\n"
                                              "  seeds: [0, 1]\n"));
  ASSERT_EQ(spec.trials.size(), 12u);
  EXPECT_EQ(spec.sweep_keys, (std::vector<std::string>{"stages.tune.peft.length",
                                                       "stages.tune.batch_size", "seed"}));
  EXPECT_EQ(spec.trials[0].id, "length=1,batch_size=8,seed=0");
  EXPECT_EQ(spec.trials[1].id, "length=1,batch_size=8,seed=1");
  EXPECT_EQ(spec.trials[2].id, "length=1,batch_size=16,seed=0");
  EXPECT_EQ(spec.trials[11].id, "length=20,batch_size=16,seed=1");
  EXPECT_EQ(spec.trials[11].tune->peft.settings.at("length"), 20);
  EXPECT_EQ(spec.trials[11].tune->batch_size, 16);
  EXPECT_EQ(spec.trials[11].tune->seed, 1u);
  EXPECT_EQ(spec.trials[11].seed, 1u);
  EXPECT_EQ(
      spec.trials[3].sweep_point,
      (std::vector<std::pair<std::string, std::string>>{
          {"stages.tune.peft.length", "1"}, {"stages.tune.batch_size", "16"}, {"seed", "1"}}));
}

TEST_F(SpecTest, ZipGroupsAdvanceTogetherAndCrossEachOther) {
  fs::create_directories(dir_ / "CB");
  for (const char* file : {"train.jsonl", "val.jsonl"}) std::ofstream(dir_ / "CB" / file);
  const ExperimentSpec spec = parse(base_spec("",
                                              "sweep:\n"
                                              "  zip:\n"
                                              "    tasks:\n"
                                              "      stages.tune.task: [rte, cb]\n"
                                              "      stages.tune.data_dir: [" +
                                                  path("RTE") + ", " + path("CB") +
                                                  "]\n"
                                                  "    sizes:\n"
                                                  "      stages.tune.batch_size: [8, 16, 32]\n"
                                                  "      stages.tune.steps: [10, 20, 30]\n"
                                                  "  hide: [stages.tune.data_dir]\n"));
  ASSERT_EQ(spec.trials.size(), 6u);
  EXPECT_EQ(spec.trials[0].id, "task=rte,batch_size=8,steps=10");
  EXPECT_EQ(spec.trials[5].id, "task=cb,batch_size=32,steps=30");
  EXPECT_EQ(spec.trials[5].tune->task.data_dir, path("CB"));
  EXPECT_EQ(spec.trials[5].sweep_point.size(), 4u);  // hidden keys stay in the point
}

TEST_F(SpecTest, TagsNameTrialsAndXPicksThePlotAxis) {
  fs::create_directories(dir_ / "big");
  const ExperimentSpec spec = parse(base_spec("",
                                              "tags: {note: paper}\n"
                                              "sweep:\n"
                                              "  zip:\n"
                                              "    tags.size: [small, big]\n"
                                              "    model.checkpoint: [" +
                                                  path("ckpt") + ", " + path("big") +
                                                  "]\n"
                                                  "  grid: {stages.tune.peft.length: [1, 5]}\n"
                                                  "  hide: [model.checkpoint]\n"
                                                  "  x: stages.tune.peft.length\n"));
  ASSERT_EQ(spec.trials.size(), 4u);
  EXPECT_EQ(spec.trials[2].id, "size=big,length=1");
  EXPECT_EQ(spec.trials[2].tags.at("size"), "big");
  EXPECT_EQ(spec.trials[2].tags.at("note"), "paper");
  EXPECT_EQ(spec.trials[2].model.checkpoint, path("big"));
  EXPECT_EQ(spec.sweep_keys, (std::vector<std::string>{"tags.size", "stages.tune.peft.length"}));
  EXPECT_EQ(spec.plot_x, "stages.tune.peft.length");
  // What reports need to tell a series from a key that moves with the x axis.
  EXPECT_EQ(spec.sweep_groups,
            (std::vector<std::vector<std::string>>{{"tags.size", "model.checkpoint"},
                                                   {"stages.tune.peft.length"}}));
  // Tags are labels: they do not change what a stage computes.
  EXPECT_EQ(parse(base_spec()).trials[0].tune->hash,
            parse(base_spec("", "tags: {a: b}\n")).trials[0].tune->hash);
  EXPECT_THROW_MSG(
      parse(base_spec("", "sweep: {grid: {stages.tune.steps: [1, 2]}, x: stages.tune.step}\n")),
      "sweep.x names 'stages.tune.step', which is not swept (nor total_params); did you mean "
      "'stages.tune.steps'?");
  // total_params is the one x that is not swept: each trial's parameter count.
  EXPECT_EQ(
      parse(base_spec("", "sweep: {grid: {stages.tune.steps: [1, 2]}, x: total_params}\n")).plot_x,
      "total_params");
}

TEST_F(SpecTest, PathValuesShortenInIds) {
  fs::create_directories(dir_ / "a" / "t5-small-lm-adapt");
  fs::create_directories(dir_ / "b" / "t5-small-lm-adapt");
  const ExperimentSpec one =
      parse(base_spec("", "sweep:\n  grid:\n    model.checkpoint: [" + path("ckpt") + ", " +
                              path("a/t5-small-lm-adapt") + "]\n"));
  EXPECT_EQ(ids(one),
            (std::vector<std::string>{"checkpoint=ckpt", "checkpoint=t5-small-lm-adapt"}));
  // Two paths with one basename: the ids fall back to the whole (sanitised) paths.
  const ExperimentSpec two =
      parse(base_spec("", "sweep:\n  grid:\n    model.checkpoint: [" + path("a/t5-small-lm-adapt") +
                              ", " + path("b/t5-small-lm-adapt") + "]\n"));
  EXPECT_NE(two.trials[0].id, two.trials[1].id);
  EXPECT_EQ(two.trials[0].id.find('/'), std::string::npos);
}

TEST_F(SpecTest, SetOverridesAnyKey) {
  const ExperimentSpec spec =
      parse(base_spec(), {"stages.tune.steps=100", "stages.tune.peft.length=7",
                          "stages.eval.splits=[validation, test]", "model.dtype=bf16"});
  const Trial& t = spec.trials[0];
  EXPECT_EQ(t.tune->steps, 100);
  EXPECT_EQ(t.tune->peft.settings.at("length"), 7);
  EXPECT_EQ(t.eval->splits, (std::vector<std::string>{"validation", "test"}));
  EXPECT_EQ(t.model.dtype, DType::bf16);
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.tune.stesp=5"}),
                   "--set stages.tune.stesp=5: unknown key 'stesp' in stages.tune; did you mean "
                   "'steps'?");
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.tune.steps"}), "expected key=value");
  // A swept key is one component of sweep.grid / sweep.zip, dots and all.
  const ExperimentSpec swept =
      parse(base_spec("", "sweep: {zip: {g: {stages.tune.steps: [1, 2]}}}\n"),
            {"sweep.grid.stages.tune.peft.length=[1, 5, 20]",
             "sweep.zip.g.stages.tune.batch_size=[8, 16]"});
  ASSERT_EQ(swept.trials.size(), 6u);
  EXPECT_EQ(swept.trials[5].id, "steps=2,batch_size=16,length=20");
  EXPECT_THROW_MSG(parse(base_spec(), {"model.checkpoint.x=1"}), "it is a string, not a map");
}

TEST_F(SpecTest, SetNullDeletesTheKeyLikeExtends) {
  ASSERT_TRUE(parse(base_spec()).trials[0].eval.has_value());
  for (const char* flag : {"stages.eval=null", "stages.eval=~", "stages.eval=", "stages.eval=Null"})
    EXPECT_FALSE(parse(base_spec(), {flag}, false).trials[0].eval.has_value()) << flag;
  // Deleting creates nothing on the way; deleting what is not there (a typo) is an error;
  // a quoted 'null' is a string.
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.eval=null", "stages.eval.splits=null"}),
                   "--set stages.eval.splits=null: nothing to delete: the spec has no stages.eval");
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.evl=null"}),
                   "--set stages.evl=null: nothing to delete: the spec has no stages.evl; did you "
                   "mean 'eval'?");
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.eval.transfer.3=null"}),
                   "nothing to delete: the spec has no stages.eval.transfer");
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.eval='null'"}),
                   "stages.eval must be a map, got a string");
  // A list item goes too.
  const std::string transfer =
      "stages.eval.transfer=[{task: rte, data_dir: " + path("RTE") + ", splits: [train]}]";
  EXPECT_EQ(parse(base_spec(), {transfer}).trials[0].eval->transfer.size(), 1u);
  EXPECT_TRUE(parse(base_spec(), {transfer, "stages.eval.transfer.0=null"})
                  .trials[0]
                  .eval->transfer.empty());
  // A swept key goes too.
  const ExperimentSpec swept = parse(base_spec("", "sweep: {grid: {stages.tune.steps: [1, 2]}}\n"),
                                     {"sweep.grid.stages.tune.steps=null"});
  EXPECT_EQ(swept.trials.size(), 1u);
}

TEST_F(SpecTest, SetRenamesTheRunAndRejectsExtends) {
  const ExperimentSpec renamed = parse(base_spec(), {"name=renamed", "description=about"});
  EXPECT_EQ(renamed.name, "renamed");
  EXPECT_EQ(renamed.description, "about");
  // A spec named after its file takes --set name too.
  std::string unnamed = base_spec();
  unnamed.erase(0, unnamed.find('\n') + 1);
  EXPECT_EQ(parse(unnamed).name, "t");
  EXPECT_EQ(parse(unnamed, {"name=other"}).name, "other");
  EXPECT_THROW_MSG(parse(base_spec(), {"name=a/b"}), "--set name=a/b: name 'a/b' must be");
  EXPECT_THROW_MSG(parse(base_spec(), {"name=.."}), "--set name=..: name '..' must be");
  EXPECT_THROW_MSG(parse(base_spec(), {"name=a=b"}), "--set name=a=b: name 'a=b' must be");
  EXPECT_THROW_MSG(parse(base_spec(), {"extends=base.yaml"}),
                   "--set extends=base.yaml: extends cannot be set with --set");
}

TEST_F(SpecTest, VariablesResolveDefaultThenEnvironmentThenSet) {
  std::string text = base_spec("    steps: ${STEPS}\n", "vars:\n  ROOT: " + dir_.string() +
                                                            "\n  CKPT: ${ROOT}/ckpt\n"
                                                            "  STEPS: '40'\n");
  text.replace(text.find("checkpoint: " + path("ckpt")), ("checkpoint: " + path("ckpt")).size(),
               "checkpoint: ${CKPT}");
  ExperimentSpec spec = parse(text);
  EXPECT_EQ(spec.vars.at("CKPT"), path("ckpt"));
  EXPECT_EQ(spec.vars.at("SPEC_DIR"), dir_.string());
  EXPECT_EQ(spec.trials[0].model.checkpoint, path("ckpt"));
  EXPECT_EQ(spec.trials[0].tune->steps, 40);  // an unquoted ${..} takes the value's type
  fs::create_directories(dir_ / "other");
  spec = parse(text, {}, true, {{"CKPT", path("other")}});
  EXPECT_EQ(spec.trials[0].model.checkpoint, path("other"));
  spec = parse(text, {"vars.CKPT=" + path("ckpt")}, true, {{"CKPT", path("other")}});
  EXPECT_EQ(spec.trials[0].model.checkpoint, path("ckpt"));
  spec = parse(text, {"vars.STEPS=7"});
  EXPECT_EQ(spec.trials[0].tune->steps, 7);
  EXPECT_THROW_MSG(parse(text, {"vars.NOPE=1"}), "no variable 'NOPE' is declared");
  std::string quoted = text;
  quoted.replace(quoted.find("steps: ${STEPS}"), 15, "steps: '${STEPS}'");
  EXPECT_THROW_MSG(parse(quoted), "stages.tune.steps must be an integer, got string '40'");
}

TEST_F(SpecTest, UndefinedVariableIsLocated) {
  const std::string text =
      "vars: {T5_DIR: /x}\n"
      "model:\n"
      "  checkpoint: ${T5DIR}/base\n";
  EXPECT_THROW_MSG(parse(text, {}, false),
                   "t.yaml:3:15: undefined variable ${T5DIR}: declare it under vars: (did you "
                   "mean 'T5_DIR'?)");
}

// The message of the sp::Error that f throws ("" when it throws none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST_F(SpecTest, AValueFromOutsideTheSpecSaysWhereItCameFrom) {
  const std::string text = base_spec("    steps: ${A}\n", "vars: {A: 2, B: '${A}'}\n");
  const std::map<std::string, std::string> env = {{"A", "abc"}};
  EXPECT_EQ(error_of([&] { parse(text, {}, true, env); }),
            path("t.yaml") +
                ":11:12: stages.tune.steps must be an integer, got string 'abc' (from $A in the "
                "environment)");
  EXPECT_EQ(error_of([&] { parse(text, {"vars.A=abc"}); }),
            path("t.yaml") +
                ":11:12: stages.tune.steps must be an integer, got string 'abc' (from --set "
                "vars.A=abc)");
  // Through another variable too; a value the spec itself gives names nothing more.
  std::string via_b = text;
  via_b.replace(via_b.find("steps: ${A}"), 11, "steps: ${B}");
  EXPECT_THROW_MSG(parse(via_b, {}, true, env), "got string 'abc' (from $A in the environment)");
  EXPECT_EQ(error_of([&] { parse(base_spec("    steps: ${A}\n", "vars: {A: abc}\n")); }),
            path("t.yaml") + ":11:12: stages.tune.steps must be an integer, got string 'abc'");
}

TEST_F(SpecTest, VariableExpansionIsBounded) {
  // Eight references a level from 16 bytes: ${C} is 512 KiB, ${B} would be 4 MiB.
  std::string vars = "vars:\n";
  const std::string names = "ABCDEFGH";
  for (size_t i = 0; i + 1 < names.size(); ++i) {
    vars += str_cat("  ", names[i], ": '");
    for (int j = 0; j < 8; ++j) vars += str_cat("${", names[i + 1], "}");
    vars += "'\n";
  }
  vars += "  H: xxxxxxxxxxxxxxxx\n";
  EXPECT_THROW_MSG(parse(base_spec("", vars)),
                   "t.yaml:6:6: ${VAR} substitution makes variable ${B} longer than 1048576 bytes "
                   "(1 MiB), the limit");
  // One value, and all of them together.
  const std::string big = "vars: {V: " + std::string(600000, 'x') + "}\n";
  EXPECT_THROW_MSG(parse(base_spec("", big + "description: ${V}${V}\n")),
                   "t.yaml:5:14: ${VAR} substitution makes the value longer than 1048576 bytes "
                   "(1 MiB), the limit");
  std::string tags = "tags:\n";
  for (int i = 0; i < 30; ++i) tags += str_cat("  t", i, ": ${V}\n");
  EXPECT_THROW_MSG(parse(base_spec("", big + tags)),
                   "t.yaml:33:8: ${VAR} substitution makes the spec's values longer than 16777216 "
                   "bytes (16 MiB) in all, the limit");
  tags = "tags:\n";
  for (int i = 0; i < 20; ++i) tags += str_cat("  t", i, ": ${V}\n");
  EXPECT_EQ(parse(base_spec("", big + tags)).trials[0].tags.at("t19").size(), 600000u);
}

TEST_F(SpecTest, TheNumberOfTrialsIsBoundedBeforeAnyIsMade) {
  // 11 * 9091 = 100001 trials, one more than the limit.
  std::string eleven = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]";
  std::string long_list = "[1";
  for (int i = 2; i <= 9091; ++i) long_list += str_cat(", ", i);
  long_list += "]";
  EXPECT_THROW_MSG(parse(base_spec("", "sweep:\n  grid:\n    stages.tune.steps: " + long_list +
                                           "\n    stages.tune.batch_size: " + eleven + "\n")),
                   "t.yaml:5:3: the sweep makes 100001 trials (the lengths of its zip groups, grid "
                   "lists and seeds multiplied), more than the limit of 100000: split it into "
                   "several specs");
  // Zip groups and seeds count; a product past 64 bits does not wrap around.
  EXPECT_THROW_MSG(parse(base_spec("", "sweep:\n  zip: {stages.tune.steps: " + eleven +
                                           "}\n  seeds: " + long_list + "\n")),
                   "t.yaml:5:3: the sweep makes 100001 trials");
  std::string grid = "sweep:\n  grid:\n";
  for (int i = 0; i < 20; ++i)
    grid += str_cat("    tags.t", i, ": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n");
  EXPECT_THROW_MSG(parse(base_spec("", grid)), "t.yaml:5:3: the sweep makes more than 2^64 trials");
}

TEST_F(SpecTest, SweepSeedsAloneSetsTheTuneSeed) {
  EXPECT_THROW_MSG(
      parse(base_spec("", "sweep:\n  grid:\n    stages.tune.seed: [1, 2]\n  seeds: [3]\n")),
      "t.yaml:6:5: sweep.grid sweeps stages.tune.seed, which sweep.seeds already sets; list the "
      "seeds in sweep.seeds only");
  EXPECT_THROW_MSG(
      parse(base_spec("",
                      "sweep: {zip: {g: {stages.tune.seed: [1, 2], "
                      "stages.tune.steps: [5, 6]}}, seeds: [3]}\n")),
      "t.yaml:4:19: sweep.zip.g sweeps stages.tune.seed, which sweep.seeds already sets");
  // A swept map with a seed in it; a swept map without one is fine.
  EXPECT_THROW_MSG(parse(base_spec("",
                                   "sweep: {grid: {stages.tune: [{task: rte}, {task: cb, "
                                   "seed: 4}]}, seeds: [3]}\n")),
                   "t.yaml:4:16: sweep.grid.stages.tune sets stages.tune.seed, which sweep.seeds "
                   "already sets");
  EXPECT_EQ(parse(base_spec("",
                            "sweep: {grid: {stages.tune.peft: [{method: prompt_tuning, "
                            "length: 3}]}, seeds: [3, 4]}\n"))
                .trials[1]
                .tune->seed,
            4u);
  // Given by a flag, sweep.seeds is the one the error names.
  EXPECT_THROW_MSG(
      parse(base_spec("", "sweep: {grid: {stages.tune.seed: [1, 2]}}\n"), {"sweep.seeds=[3]"}),
      "--set sweep.seeds=[3]: sweep.grid sweeps stages.tune.seed, which sweep.seeds already sets");
}

TEST_F(SpecTest, SetOfASweptKeyIsAnError) {
  EXPECT_THROW_MSG(parse(base_spec("", "sweep: {seeds: [0, 1]}\n"), {"stages.tune.seed=4"}),
                   "--set stages.tune.seed=4: stages.tune.seed is swept by sweep.seeds, which sets "
                   "it in every trial; set the seeds instead (--set 'sweep.seeds=[...]')");
  const std::string grid = base_spec("", "sweep: {grid: {stages.tune.steps: [1, 2]}}\n");
  EXPECT_THROW_MSG(parse(grid, {"stages.tune.steps=5"}),
                   "--set stages.tune.steps=5: stages.tune.steps is swept by sweep.grid, which "
                   "sets it in every trial; set the swept values instead (--set "
                   "'sweep.grid.stages.tune.steps=[...]')");
  // Inside a swept map, or a map that holds a swept key.
  EXPECT_THROW_MSG(parse(base_spec("",
                                   "sweep: {zip: {g: {stages.tune.peft: [{method: "
                                   "prompt_tuning}, {method: lora}]}}}\n"),
                         {"stages.tune.peft.length=5"}),
                   "--set stages.tune.peft.length=5: stages.tune.peft is swept by sweep.zip.g");
  EXPECT_THROW_MSG(parse(grid, {"stages.tune={task: rte, steps: 3}"}),
                   "stages.tune.steps is swept by sweep.grid");
  // What the sweep leaves alone can be set.
  EXPECT_EQ(parse(grid, {"stages.tune.batch_size=8"}).trials[1].tune->batch_size, 8);
  EXPECT_EQ(parse(grid, {"sweep.grid.stages.tune.steps=[7]"}).trials[0].tune->steps, 7);
}

TEST_F(SpecTest, ASpecIsOneYamlDocument) {
  EXPECT_THROW_MSG(parse(base_spec() + "---\nname: u\n"),
                   "t.yaml:11:1: a second YAML document starts here: a spec is one document "
                   "(merge its keys into the first, or move it to a file of its own)");
  EXPECT_THROW_MSG(parse("name: t\n...\nname: u\n"), "t.yaml:3:1: a second YAML document");
  // An empty document after the first ignores nothing.
  EXPECT_EQ(parse(base_spec() + "---\n").name, "t");
  EXPECT_EQ(parse(base_spec() + "...\n").name, "t");
}

TEST_F(SpecTest, SetNameNullNamesTheRunAfterItsFile) {
  std::string named = base_spec();
  named.replace(0, named.find('\n'), "name: other");
  for (const char* flag : {"name=null", "name=", "name=~"})
    EXPECT_EQ(parse(named, {flag}).name, "t") << flag;
  EXPECT_EQ(parse(named, {"name=null", "name=again"}).name, "again");
  EXPECT_THROW_MSG(parse(named, {"name=''"}), "--set name='': name '' must be letters");
}

TEST_F(SpecTest, NestingTooDeepIsNamed) {
  std::string deep;
  for (int i = 0; i < 600; ++i) deep += std::string(static_cast<size_t>(i), ' ') + "k:\n";
  EXPECT_THROW_MSG(parse(deep),
                   "t.yaml:499:501: maps and lists nest deeper than 499 levels, the most the YAML "
                   "reader accepts");
  EXPECT_THROW_MSG(parse(base_spec(), {"tags=" + std::string(600, '[') + std::string(600, ']')}),
                   ": maps and lists nest deeper than 499 levels");
  // A dotted key cannot make a tree deeper than the code that walks it can go.
  std::string key = "tags";
  for (int i = 0; i < 150; ++i) key += ".a";
  EXPECT_THROW_MSG(parse(base_spec(), {key + "=1"}), "...': more than 100 components");
  // Aliases that repeat aliases (a "billion laughs") stop at a million nodes.
  std::string laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    laughs += str_cat("a", i, ": &a", i, " [");
    for (int j = 0; j < 10; ++j) laughs += str_cat(j ? ", " : "", "*a", i - 1);
    laughs += "]\n";
  }
  EXPECT_THROW_MSG(parse(laughs), "the document makes more than 1048576 maps, lists and values");
}

TEST_F(SpecTest, ExtendsMergesAndNullDeletes) {
  write("base.yaml", base_spec("      length: 100\n") +
                         "  lm_adapt: {steps: 10}\n"
                         "corpus: {builtin: wordnet}\n");
  write("derived.yaml",
        "extends: base.yaml\n"
        "stages:\n"
        "  tune: {steps: 5, peft: {length: 20}}\n"
        "  lm_adapt: null\n");
  SpecLoadOptions options;
  options.read_environment = false;
  const ExperimentSpec spec = load_spec(path("derived.yaml"), options);
  EXPECT_EQ(spec.name, "derived");  // a name is not inherited: the file's stem
  const Trial& t = spec.trials[0];
  EXPECT_EQ(t.tune->steps, 5);
  EXPECT_EQ(t.tune->task.name, "rte");
  EXPECT_EQ(t.tune->peft.settings.at("length"), 20);
  EXPECT_FALSE(t.lm_adapt.has_value());

  write("loop_a.yaml", "extends: loop_b.yaml\n");
  write("loop_b.yaml", "extends: loop_a.yaml\n");
  EXPECT_THROW_MSG(load_spec(path("loop_b.yaml"), options), "makes a cycle");
  write("missing.yaml", "extends: nowhere.yaml\n");
  EXPECT_THROW_MSG(load_spec(path("missing.yaml"), options),
                   "missing.yaml:1:10: extends 'nowhere.yaml': no such file");
  EXPECT_THROW_MSG(
      load_spec(path("ckpt"), options),
      "[spec] " + path("ckpt") + " is a directory: expected an experiment's YAML file");
}

TEST_F(SpecTest, UnknownPeftKeySuggestsTheRightOne) {
  EXPECT_THROW_MSG(parse(base_spec("      lenght: 20\n")),
                   "t.yaml:10:7: unknown key 'lenght' in stages.tune.peft; did you mean 'length'?");
}

TEST_F(SpecTest, UnknownKeysEverywhereAreLocated) {
  EXPECT_THROW_MSG(parse(base_spec("    stpes: 3\n")),
                   "t.yaml:10:5: unknown key 'stpes' in stages.tune; did you mean 'steps'?");
  EXPECT_THROW_MSG(parse(base_spec() + "modle: {}\n"),
                   "t.yaml:11:1: unknown key 'modle' in the spec; did you mean 'model'?");
  EXPECT_THROW_MSG(parse(base_spec("    optimizer: {name: adafactor, momentum: 0.9}\n")),
                   "t.yaml:10:34: stages.tune.optimizer.momentum applies only to optimizer sgd "
                   "(this one is adafactor)");
  EXPECT_THROW_MSG(parse(base_spec("", "  config: {d_model: 8}\n")),
                   "model.config applies to presets only");
  EXPECT_THROW_MSG(parse("model: {preset: t5-tiny, config: {dmodel: 8}}\n"
                         "tokenizer: {vocab_size: 100}\ncorpus: {builtin: wordnet}\n"
                         "stages: {pretrain: {steps: 1}}\n"),
                   "t.yaml:1:35: unknown key 'dmodel' in model.config (T5Config); did you mean "
                   "'d_model'?");
  EXPECT_THROW_MSG(parse(base_spec("", "sweep: {grids: {}}\n")),
                   "unknown key 'grids' in sweep; did you mean 'grid'?");
}

// A misspelled key reads as absent, so a check of the keys it belongs with (a required
// key, "give exactly one", a stage that needs another) would report it as something else.
// It is reported first, located, with the key it was meant to be.
TEST_F(SpecTest, AMisspelledKeyIsReportedBeforeTheChecksItWouldMislead) {
  const std::string at = path("t.yaml") + ":";
  const std::string ckpt = path("ckpt"), rte = path("RTE");
  // Not "model.preset and model.checkpoint: give exactly one".
  EXPECT_THROW_MSG(parse("name: t\nmodel:\n  chekpoint: " + ckpt +
                         "\nstages:\n  tune: {task: rte, data_dir: " + rte + "}\n"),
                   at + "3:3: unknown key 'chekpoint' in model; did you mean 'checkpoint'?");
  // Not "stages.eval needs stages.tune".
  EXPECT_THROW_MSG(parse("name: t\nmodel: {checkpoint: " + ckpt +
                         "}\nstages:\n  tunee: {task: rte, data_dir: " + rte + "}\n  eval: {}\n"),
                   at + "4:3: unknown key 'tunee' in stages; did you mean 'tune'?");
  // Not "stages.tune is missing", here nor in the loader's check of sweep.seeds.
  const std::string no_stages = "name: t\nmodel: {checkpoint: " + ckpt +
                                "}\nstage:\n  tune: {task: rte, data_dir: " + rte + "}\n";
  EXPECT_THROW_MSG(parse(no_stages),
                   at + "3:1: unknown key 'stage' in the spec; did you mean 'stages'?");
  EXPECT_THROW_MSG(parse(no_stages + "sweep: {seeds: [1, 2]}\n"),
                   at + "3:1: unknown key 'stage' in the spec; did you mean 'stages'?");
  // The same in the other maps: not "stages.tune.task is required", ...
  EXPECT_THROW_MSG(parse("name: t\nmodel: {checkpoint: " + ckpt +
                         "}\nstages:\n  tune: {tsk: rte, data_dir: " + rte + "}\n"),
                   at + "4:10: unknown key 'tsk' in stages.tune; did you mean 'task'?");
  // ... nor "grad_accumulation (8) must divide batch_size (32)", ...
  EXPECT_THROW_MSG(parse(base_spec("    batch_sise: 8\n    grad_accumulation: 8\n")),
                   at + "10:5: unknown key 'batch_sise' in stages.tune; did you mean "
                        "'batch_size'?");
  // ... nor "tokenizer.path is required with source: file", ...
  EXPECT_THROW_MSG(parse(base_spec("", "tokenizer: {source: file, pth: x.model}\n")),
                   at + "4:27: unknown key 'pth' in tokenizer; did you mean 'path'?");
  // ... (a key of another setting is a likely meaning too) ...
  EXPECT_THROW_MSG(parse("model: {preset: t5-tiny}\ntokenizer: {pth: x.model}\n"
                         "corpus: {builtin: wordnet}\nstages: {pretrain: {steps: 1}}\n"),
                   at + "2:13: unknown key 'pth' in tokenizer; did you mean 'path'?");
  // ... nor "corpus.builtin and corpus.files: give exactly one", ...
  EXPECT_THROW_MSG(parse("model: {preset: t5-tiny}\ncorpus: {builtn: wordnet}\n"
                         "stages: {pretrain: {steps: 1}}\n"),
                   at + "2:10: unknown key 'builtn' in corpus; did you mean 'builtin'?");
  // ... nor "sweep.x names 'stages.tune.steps', which is not swept".
  EXPECT_THROW_MSG(parse(base_spec("",
                                   "sweep: {gird: {stages.tune.steps: [1, 2]}, x: "
                                   "stages.tune.steps}\n")),
                   at + "4:9: unknown key 'gird' in sweep; did you mean 'grid'?");
}

// finish() may run before a map's keys are read, so they must have been declared: reading
// another key after it would skip the unknown-key check of that key.
TEST(SpecMapReader, ReadingAnUndeclaredKeyAfterFinishIsAnInternalError) {
  const SpecNode node = SpecNode::make_map({});
  MapReader r(&node, "m");
  r.declare({"a"});
  r.finish();
  EXPECT_EQ(r.integer("a", 3), 3);
  EXPECT_THROW_MSG(r.integer("b", 0), "[spec] internal: m.b is read after finish()");
}

TEST_F(SpecTest, AConflictWithASetKeyNamesTheFlag) {
  const std::string accumulating = base_spec("    batch_size: 8\n    grad_accumulation: 4\n");
  EXPECT_THROW_MSG(parse(accumulating, {"stages.tune.batch_size=10"}),
                   "--set stages.tune.batch_size=10: stages.tune.grad_accumulation (4) must divide "
                   "batch_size (10)");
  EXPECT_THROW_MSG(parse(base_spec("    grad_accumulation: 3\n")),
                   "t.yaml:10:24: stages.tune.grad_accumulation (3) must divide batch_size (32)");
  EXPECT_THROW_MSG(parse(base_spec("    early_stopping_patience: 2\n"), {"stages.tune.steps=10"}),
                   "--set stages.tune.steps=10: stages.tune.eval_every (1000) is more than steps");
  EXPECT_THROW_MSG(parse(base_spec(), {"model.preset=t5-tiny"}),
                   "--set model.preset=t5-tiny: model.preset and model.checkpoint: give exactly "
                   "one");
  EXPECT_THROW_MSG(parse(base_spec("", "  init_seed: 3\n")),
                   "t.yaml:4:14: model.init_seed applies to presets only");
  EXPECT_THROW_MSG(
      parse(base_spec("", "  init_seed: 3\n"), {"model.checkpoint=" + path("ckpt")}),
      "--set model.checkpoint=" + path("ckpt") + ": model.init_seed applies to presets only");
}

// Schedules the optimizer would refuse are refused with the spec's location, before any
// stage runs.
TEST_F(SpecTest, ImpossibleSchedulesAreRefusedBeforeAnyWork) {
  EXPECT_THROW_MSG(
      parse(base_spec("    steps: 100\n"
                      "    optimizer: {schedule: {kind: cosine, warmup_steps: 100}}\n")),
      "t.yaml:11:56: stages.tune.optimizer.schedule.warmup_steps (100) must be below the "
      "stage's steps (100): a cosine decay starts where the warm-up ends");
  EXPECT_THROW_MSG(parse(base_spec("    optimizer: {schedule: {kind: step, decay_factor: 2}}\n")),
                   "stages.tune.optimizer.schedule.decay_factor must be in (0, 1]");
  EXPECT_THROW_MSG(
      parse(base_spec("    optimizer: {schedule: {kind: rsqrt, rsqrt_start_step: -1}}\n")),
      "stages.tune.optimizer.schedule.rsqrt_start_step must be >= 0");
  EXPECT_THROW_MSG(
      parse(base_spec("    optimizer: {schedule: {kind: constant, rsqrt_start_step: 5}}\n")),
      "stages.tune.optimizer.schedule.rsqrt_start_step applies only to schedule kind rsqrt");
  // A warm-up as long as a constant or rsqrt schedule's stage is legal (it never decays).
  EXPECT_EQ(parse(base_spec("    steps: 100\n"
                            "    eval_every: 100\n"
                            "    optimizer: {schedule: {kind: constant, warmup_steps: 100}}\n"))
                .trials[0]
                .tune->optimizer.schedule.warmup_steps,
            100);
  const Trial continued =
      parse(base_spec("    optimizer: {schedule: {kind: rsqrt, rsqrt_start_step: 1000000}}\n"))
          .trials[0];
  EXPECT_DOUBLE_EQ(make_schedule(continued.tune->optimizer, 100).lr(0), 0.3 / 1000.0);
  EXPECT_NE(continued.tune->hash,
            parse(base_spec("    optimizer: {schedule: rsqrt}\n")).trials[0].tune->hash);
}

TEST_F(SpecTest, KeysOfAnotherSettingSayWhichSettingTheyNeed) {
  EXPECT_THROW_MSG(
      parse(base_spec("    optimizer: {schedule: {kind: linear, rsqrt_offset: 5}}\n")),
      "t.yaml:10:42: stages.tune.optimizer.schedule.rsqrt_offset applies only to schedule kind "
      "rsqrt (this one is linear)");
  EXPECT_THROW_MSG(
      parse(base_spec("    optimizer: {schedule: {kind: rsqrt, final_fraction: 0}}\n")),
      "stages.tune.optimizer.schedule.final_fraction applies only to schedule kinds "
      "linear and cosine (this one is rsqrt)");
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.tune.optimizer.schedule.decay_every=5"}),
                   "--set stages.tune.optimizer.schedule.decay_every=5: "
                   "stages.tune.optimizer.schedule.decay_every applies only to schedule kind step "
                   "(this one is constant)");
  EXPECT_THROW_MSG(parse(base_spec("", "tokenizer: {path: x.model}\n")),
                   "t.yaml:4:13: tokenizer.path applies only to source file (this one is "
                   "checkpoint)");
  EXPECT_THROW_MSG(parse(base_spec("", "tokenizer: {vocab_size: 100}\n")),
                   "tokenizer.vocab_size applies only to source train (this one is checkpoint)");
  EXPECT_THROW_MSG(parse("model: {preset: t5-tiny}\ncorpus: {builtin: wordnet}\n"
                         "stages: {pretrain: {steps: 1, objective: prefix_lm, noise_density: "
                         "0.2}}\n"),
                   "t.yaml:3:53: stages.pretrain.noise_density applies only to objective "
                   "span_corruption (this one is prefix_lm)");
  EXPECT_THROW_MSG(parse(base_spec("    optimizer: {name: sgd, beta1: 0.9}\n")),
                   "stages.tune.optimizer.beta1 applies only to optimizers adafactor and adamw "
                   "(this one is sgd)");
}

TEST_F(SpecTest, WrongTypesAndImpossibleValuesAreLocated) {
  EXPECT_THROW_MSG(parse(base_spec("    steps: abc\n")),
                   "t.yaml:10:12: stages.tune.steps must be an integer, got string 'abc'");
  EXPECT_THROW_MSG(parse(base_spec("    steps: '10'\n")),
                   "stages.tune.steps must be an integer, got string '10'");
  EXPECT_THROW_MSG(parse(base_spec("    steps: -5\n")),
                   "t.yaml:10:12: stages.tune.steps must be positive, got -5");
  EXPECT_THROW_MSG(parse(base_spec("    dropout: yes please\n")),
                   "stages.tune.dropout must be a number");
  EXPECT_THROW_MSG(parse(base_spec("    batch_size: 10\n    grad_accumulation: 4\n")),
                   "stages.tune.grad_accumulation (4) must divide batch_size (10)");
  EXPECT_THROW_MSG(parse(base_spec("    steps: 100\n    eval_every: 500\n"
                                   "    early_stopping_patience: 3\n")),
                   "stages.tune.eval_every (500) is more than steps (100)");
  EXPECT_THROW_MSG(parse(base_spec("      length: abc\n")),
                   "t.yaml:10:15: stages.tune.peft.length must be an integer");
  // A value the method rejects is located at that value, in the file or the --set flag.
  EXPECT_THROW_MSG(parse(base_spec("      length: 0\n")),
                   "t.yaml:10:15: stages.tune.peft.length: [peft:prompt_tuning] setting 'length' "
                   "must be in [1, 65536], got 0");
  EXPECT_THROW_MSG(
      parse(base_spec(), {"stages.tune.peft.length=0"}),
      "--set stages.tune.peft.length=0: stages.tune.peft.length: [peft:prompt_tuning]");
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.tune.peft={method: lora, rank: 0}"}),
                   "--set stages.tune.peft={method: lora, rank: 0}: stages.tune.peft.rank: ");
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.eval.splits=5"}),
                   "--set stages.eval.splits=5: stages.eval.splits must be a split name (a "
                   "string), got number '5'");
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.eval.splits=[validation, true]"}),
                   "stages.eval.splits[1] must be a split name (a string), got boolean 'true'");
  EXPECT_THROW_MSG(parse(base_spec("    train_split: 32\n")),
                   "t.yaml:10:18: stages.tune.train_split must be a split name (a string), got "
                   "number '32'");
  EXPECT_THROW_MSG(parse(base_spec("    optimizer: {lr: 0}\n")),
                   "stages.tune.optimizer.lr must be positive, got 0");
  EXPECT_THROW_MSG(parse(base_spec("    dropout: 1.5\n")),
                   "stages.tune.dropout must be in [0, 1), got 1.5");
  EXPECT_THROW_MSG(parse(base_spec("    optimizer: {name: adam}\n")),
                   "stages.tune.optimizer.name has no value 'adam'; did you mean 'adamw'?");
  EXPECT_THROW_MSG(parse(base_spec("    eval_method: greedy_decode\n")),
                   "has no value 'greedy_decode'");
  EXPECT_THROW_MSG(parse(base_spec("", "  device: gpu\n")), "model.device has no value 'gpu'");
  EXPECT_THROW_MSG(parse("model: {preset: t5-tinny}\ntokenizer: {vocab_size: 100}\n"
                         "corpus: {builtin: wordnet}\nstages: {pretrain: {steps: 1}}\n"),
                   "model.preset has no value 't5-tinny'; did you mean 't5-tiny'?");
  std::string bad_task = base_spec();
  bad_task.replace(bad_task.find("task: rte"), 9, "task: rtee");
  EXPECT_THROW_MSG(parse(bad_task),
                   "t.yaml:6:11: stages.tune.task has no task 'rtee'; did you mean 'rte'?");
  EXPECT_THROW_MSG(parse("model: {checkpoint: " + path("ckpt") + "}\nstages: {eval: {}}\n"),
                   "stages.eval needs stages.tune");
  EXPECT_THROW_MSG(parse("model: {preset: t5-tiny}\nstages: {pretrain: {steps: 1}}\n"),
                   "corpus.builtin and corpus.files: give exactly one");
  EXPECT_THROW_MSG(parse(base_spec(), {"model.preset=t5-tiny"}),
                   "model.preset and model.checkpoint: give exactly one");
  EXPECT_THROW_MSG(parse("model: {}\nstages: {tune: {task: rte}}\n"),
                   "model.preset and model.checkpoint: give exactly one");
  EXPECT_THROW_MSG(parse(base_spec("",
                                   "sweep: {zip: {stages.tune.steps: [1, 2], "
                                   "stages.tune.batch_size: [8]}}\n")),
                   "sweep.zip lists must have equal lengths");
  EXPECT_THROW_MSG(parse(base_spec("", "sweep: {grid: {stages.tune.steps: [1, 1]}}\n")),
                   "lists '1' twice");
  // 1 and 1.0 are one value (the same hashes: the trial would run twice).
  EXPECT_THROW_MSG(
      parse(base_spec("", "sweep: {grid: {stages.tune.optimizer.lr: [1, 0.5, 1.0]}}\n")),
      "lists '1.0' twice");
  EXPECT_THROW_MSG(parse(base_spec("",
                                   "sweep: {zip: {stages.tune.steps: [1, 1], "
                                   "stages.tune.batch_size: [8, 8]}}\n")),
                   "sweep.zip: entry 2 repeats entry 1 in every list");
  EXPECT_THROW_MSG(parse(base_spec("",
                                   "sweep: {grid: {stages.tune.steps: [1, 2]}, "
                                   "hide: [stages.tune.step]}\n")),
                   "sweep.hide names 'stages.tune.step', which is not swept; did you mean "
                   "'stages.tune.steps'?");
  // A later swept key above an earlier one replaces its values in every trial.
  EXPECT_THROW_MSG(
      parse(base_spec("",
                      "sweep:\n"
                      "  zip: {stages.tune.peft.length: [5, 20]}\n"
                      "  grid:\n"
                      "    stages.tune.peft: [{method: prompt_tuning},\n"
                      "                       {method: prompt_tuning, init: random_uniform}]\n")),
      "sweep.grid.stages.tune.peft replaces what sweep.zip.stages.tune.peft.length "
      "sets (5); sweep the key once, or keys that do not overlap");
  EXPECT_THROW_MSG(parse(base_spec("",
                                   "sweep:\n"
                                   "  grid:\n"
                                   "    stages.tune.peft: [{method: prompt_tuning, length: 3}]\n"
                                   "    stages.tune.peft.length: [5, 20]\n")),
                   "replaces what sweep.grid.stages.tune.peft sets");
  // A key inside a swept map that the map leaves out adds to it.
  const ExperimentSpec inside = parse(base_spec("",
                                                "sweep:\n"
                                                "  grid:\n"
                                                "    stages.tune.peft: [{method: prompt_tuning}]\n"
                                                "    stages.tune.peft.length: [5, 20]\n"));
  ASSERT_EQ(inside.trials.size(), 2u);
  EXPECT_EQ(inside.trials[1].tune->peft.settings.at("length"), 20);
  EXPECT_THROW_MSG(parse(base_spec("", "sweep: {grid: {vars.X: [1, 2]}}\n")),
                   "sweep.grid cannot sweep 'vars.X': sweep the key that uses the variable");
  EXPECT_THROW_MSG(parse(base_spec("", "sweep: {seeds: [1, -2]}\n")), "sweep.seeds must be >= 0");
  EXPECT_THROW_MSG(parse(base_spec("", "sweep: {grid: {stages.tune.stepz: [1, 2]}}\n")),
                   "unknown key 'stepz' in stages.tune; did you mean 'steps'?");
  EXPECT_THROW_MSG(parse("name: t\nstages: [1, 2\n"), "t.yaml:");  // a YAML syntax error
  // ${VAR} in a flow list opens a map there: the error says how to write it instead.
  EXPECT_THROW_MSG(parse("vars: {D: x}\nsweep: {grid: {stages.tune.data_dir: [${D}/a, b]}}\n"),
                   "t.yaml:2:40: end of sequence flow not found: ${VAR} cannot stand unquoted "
                   "inside [...] or {...}; quote the value ('${VAR}/x') or write a block list");
  EXPECT_THROW_MSG(parse("name: t\nname: u\n"), "t.yaml:2:1: duplicate key 'name'");
  // Bytes that are not UTF-8 (they would otherwise reach the resolved JSON and its hash).
  EXPECT_THROW_MSG(parse("name: t\ndescription: ab\xFF\n"),
                   "t.yaml:2:16: invalid UTF-8 (byte 0xFF): a spec must be UTF-8 text");
  EXPECT_THROW_MSG(parse(base_spec(), {"description=\xC3"}), "invalid UTF-8 (byte 0xC3)");
}

TEST_F(SpecTest, TuneMetricMustBeOneTheTaskReports) {
  EXPECT_EQ(parse(base_spec("    metric: accuracy\n")).trials[0].tune->metric, "accuracy");
  // Refused at load (a dry run included), not after the tune stage trained.
  EXPECT_THROW_MSG(parse(base_spec("    metric: acuracy\n"), {}, false),
                   "t.yaml:10:13: stages.tune.metric 'acuracy': task rte reports accuracy; did "
                   "you mean 'accuracy'?");
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.tune.metric=f1"}),
                   "--set stages.tune.metric=f1: stages.tune.metric 'f1': task rte reports "
                   "accuracy");
  std::string cb = base_spec("    metric: f1\n");
  cb.replace(cb.find("task: rte"), 9, "task: cb");
  EXPECT_THROW_MSG(parse(cb, {}, false),
                   "stages.tune.metric 'f1': task cb reports accuracy, mean_3class_f1");
}

TEST_F(SpecTest, MissingPathsFailUnlessDryRun) {
  std::string text = base_spec();
  text.replace(text.find(path("RTE")), path("RTE").size(), path("NOPE"));
  EXPECT_THROW_MSG(parse(text), "t.yaml:7:15: data_dir '" + path("NOPE") + "' does not exist");
  const ExperimentSpec dry = parse(text, {}, false);
  ASSERT_EQ(dry.warnings.size(), 1u);
  EXPECT_NE(dry.warnings[0].find("does not exist"), std::string::npos);
  EXPECT_NE(describe_trials(dry).find("warning: "), std::string::npos);
}

TEST_F(SpecTest, MissingSplitFilesFailUnlessDryRun) {
  fs::remove(dir_ / "RTE" / "train.jsonl");
  EXPECT_THROW_MSG(parse(base_spec()),
                   "t.yaml:7:15: stages.tune.train_split: [rte] split "
                   "'train': no file " +
                       path("RTE/train.jsonl"));
  const ExperimentSpec dry = parse(base_spec(), {}, false);
  ASSERT_EQ(dry.warnings.size(), 1u);
  EXPECT_NE(dry.warnings[0].find("no file " + path("RTE/train.jsonl")), std::string::npos);
  std::ofstream(dir_ / "RTE" / "train.jsonl");
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.eval.splits=[validation, tst]"}),
                   "--set stages.eval.splits=[validation, tst]: stages.eval.splits: [rte] split "
                   "'tst': no file");
  EXPECT_THROW_MSG(parse(base_spec("    eval_split: dev\n")),
                   "t.yaml:10:17: stages.tune.eval_split: [rte] split 'dev': no file");
  // Built-in tasks make their splits: no data_dir, nothing to find.
  const ExperimentSpec builtin = parse("model: {checkpoint: " + path("ckpt") +
                                       "}\nstages: {tune: {task: wordnet_wic}, eval: {}}\n");
  EXPECT_EQ(builtin.trials.size(), 1u);
}

// A test split may have no labels (SuperGLUE's have none): as train_split or eval_split it
// is read at load and refused when an example lacks one, before any stage runs; a labelled
// one is accepted, and an unlabelled one stays fine under stages.eval.splits.
TEST_F(SpecTest, AnUnlabelledTestSplitCannotBeTrainedOrScoredOn) {
  write("RTE/test.jsonl",
        "{\"premise\": \"p\", \"hypothesis\": \"h\", \"idx\": 0, \"label\": \"entailment\"}\n"
        "{\"premise\": \"p\", \"hypothesis\": \"h\", \"idx\": 1}\n");
  EXPECT_THROW_MSG(parse(base_spec("    eval_split: test\n")),
                   "t.yaml:10:17: stages.tune.eval_split: rte split 'test' has 1 of 2 examples "
                   "without a label (the first: rte-test-1); the tune stage trains on and scores "
                   "labelled examples only");
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.tune.train_split=test"}),
                   "--set stages.tune.train_split=test: stages.tune.train_split: rte split "
                   "'test' has 1 of 2 examples without a label");
  EXPECT_EQ(parse(base_spec(), {"stages.eval.splits=[validation, test]"}).trials.size(), 1u);
  write("RTE/test.jsonl",
        "{\"premise\": \"p\", \"hypothesis\": \"h\", \"idx\": 0, \"label\": \"entailment\"}\n");
  EXPECT_EQ(parse(base_spec("    eval_split: test\n")).trials.size(), 1u);
}

// Each evaluated (task, split) is one predictions file and one results record in a trial:
// naming one twice, in splits or through a transfer to the same task, is refused.
TEST_F(SpecTest, ASplitEvaluatedTwiceIsRefused) {
  EXPECT_THROW_MSG(parse(base_spec(), {"stages.eval.splits=[validation, validation]"}),
                   "stages.eval.splits: rte split 'validation' is evaluated twice in this "
                   "trial; its predictions (rte-validation.jsonl) and results would overwrite "
                   "each other");
  EXPECT_THROW_MSG(
      parse(base_spec(), {"stages.eval.transfer=[{task: rte, data_dir: " + path("RTE") + "}]"}),
      "stages.eval.transfer.0.splits: rte split 'validation' is evaluated twice");
  // Another split of the same task is a different file.
  EXPECT_EQ(parse(base_spec(), {"stages.eval.transfer=[{task: rte, data_dir: " + path("RTE") +
                                ", splits: [train]}]"})
                .trials.size(),
            1u);
}

TEST_F(SpecTest, EqualConfigsHashEqualAndDependenciesPropagate) {
  const std::string pre = pretrain_then_tune_spec();
  const Trial a = parse(pre).trials[0];
  // The same configuration written out with its defaults, on another device.
  const Trial b =
      parse(pre, {"stages.pretrain.batch_size=128", "stages.tune.peft.method=prompt_tuning",
                  "stages.pretrain.optimizer.schedule=rsqrt", "model.device=cuda",
                  "stages.tune.log_every=3"})
          .trials[0];
  EXPECT_EQ(a.pretrain->hash, b.pretrain->hash);
  EXPECT_EQ(a.tune->hash, b.tune->hash);
  // An integer for a float setting is that float (the preset's initializer_factor is 1.0,
  // prompt tuning's init_range 0.5).
  const Trial ints =
      parse(pre, {"model.config.initializer_factor=1", "stages.tune.peft.init_range=1"}).trials[0];
  const Trial floats =
      parse(pre, {"model.config.initializer_factor=1.0", "stages.tune.peft.init_range=1.0"})
          .trials[0];
  EXPECT_EQ(ints.pretrain->hash, a.pretrain->hash);
  EXPECT_EQ(ints.tune->hash, floats.tune->hash);
  EXPECT_NE(ints.tune->hash, a.tune->hash);
  // A change upstream changes every stage after it, not the ones before.
  const Trial c = parse(pre, {"stages.pretrain.steps=200"}).trials[0];
  EXPECT_NE(a.pretrain->hash, c.pretrain->hash);
  EXPECT_EQ(a.tune->canonical_json(), c.tune->canonical_json());
  EXPECT_NE(a.tune->hash, c.tune->hash);
  const Trial d = parse(pre, {"stages.tune.steps=20"}).trials[0];
  EXPECT_EQ(a.pretrain->hash, d.pretrain->hash);
  EXPECT_NE(a.tune->hash, d.tune->hash);
  const Trial e = parse(pre, {"corpus.max_documents=10"}).trials[0];
  EXPECT_NE(a.pretrain->hash, e.pretrain->hash);
  const Trial f = parse(pre, {"model.dtype=bf16"}).trials[0];
  EXPECT_EQ(a.pretrain->hash, f.pretrain->hash);  // the frozen dtype matters from tune on
  EXPECT_NE(a.tune->hash, f.tune->hash);
}

// A stage's hash is of its kind, its code version, its configuration and what it starts
// from, so bumping stage_code_version reruns the stage and every stage after it.
TEST_F(SpecTest, AStageHashCoversItsCodeVersion) {
  const Trial t = parse(pretrain_then_tune_spec()).trials[0];
  auto hash_with_code = [&](int code) {
    const nlohmann::json payload = {{"stage", "pretrain"},
                                    {"code", code},
                                    {"config", t.pretrain->canonical_json()},
                                    {"from", t.origin_hash()}};
    return sha256_hex(payload.dump()).substr(0, 16);
  };
  EXPECT_EQ(t.pretrain->hash, hash_with_code(stage_code_version(StageKind::pretrain)));
  EXPECT_NE(t.pretrain->hash, hash_with_code(stage_code_version(StageKind::pretrain) + 1));
  for (StageKind kind :
       {StageKind::pretrain, StageKind::lm_adapt, StageKind::tune, StageKind::eval})
    EXPECT_GE(stage_code_version(kind), 1) << stage_kind_name(kind);
}

TEST_F(SpecTest, EnsembleMembersGetConsecutiveSeedsAndHashes) {
  const ExperimentSpec spec =
      parse(base_spec("", "sweep: {seeds: [3]}\n"), {"stages.eval.ensemble=3"});
  const Trial& t = spec.trials[0];
  ASSERT_EQ(t.ensemble.size(), 3u);
  EXPECT_EQ(t.ensemble[0].hash, t.tune->hash);
  EXPECT_EQ(t.ensemble[2].seed, 5u);
  EXPECT_NE(t.ensemble[1].hash, t.ensemble[2].hash);
  // Member 1 is the tune stage a trial with seed 4 would train.
  const ExperimentSpec other = parse(base_spec("", "sweep: {seeds: [4]}\n"));
  EXPECT_EQ(t.ensemble[1].hash, other.trials[0].tune->hash);
  EXPECT_NE(describe_trials(spec).find("ensemble member 2, seed 5"), std::string::npos);
}

TEST(SpecScalar, ConversionsAreStrict) {
  EXPECT_EQ(parse_int_text("42"), 42);
  EXPECT_EQ(parse_int_text("-7"), -7);
  EXPECT_FALSE(parse_int_text("1e3"));
  EXPECT_FALSE(parse_int_text("12abc"));
  EXPECT_DOUBLE_EQ(*parse_double_text("1e-5"), 1e-5);
  EXPECT_DOUBLE_EQ(*parse_double_text("-.5"), -0.5);
  EXPECT_FALSE(parse_double_text("inf"));
  EXPECT_FALSE(parse_double_text("0.3x"));
  EXPECT_EQ(parse_bool_text("True"), true);
  EXPECT_FALSE(parse_bool_text("yes"));
  EXPECT_EQ(suggestion_suffix("grd", {"grid", "zip"}), "; did you mean 'grid'?");
  EXPECT_EQ(suggestion_suffix("qqq", {"grid", "zip"}), "; expected one of: grid, zip");
}

// What `softprompt run SPEC --dry-run` does, on every shipped spec: no data, no checkpoint
// needed, every trial validated and hashed.
TEST(ShippedSpecs, EveryOneDryRuns) {
  const fs::path specs =
      fs::path(SP_FIXTURES_DIR).parent_path().parent_path() / "experiments" / "specs";
  ASSERT_TRUE(fs::is_directory(specs)) << specs;
  int count = 0;
  for (const auto& entry : fs::recursive_directory_iterator(specs)) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    SpecLoadOptions options;
    options.check_paths = false;
    options.read_environment = false;
    ExperimentSpec spec;
    try {
      spec = load_spec(entry.path().string(), options);
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
      continue;
    }
    EXPECT_FALSE(spec.trials.empty());
    EXPECT_FALSE(describe_trials(spec).empty());
    std::vector<std::string> all = ids(spec);
    std::sort(all.begin(), all.end());
    EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "duplicate trial ids";
    ++count;
  }
  EXPECT_GE(count, 9);
}

}  // namespace
}  // namespace sp
