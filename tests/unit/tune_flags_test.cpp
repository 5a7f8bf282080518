// `softprompt tune`'s flags -> a trial through the spec's parser: its defaults, where each
// --set key goes (stage keys, optimizer shorthands, dotted paths, method settings) and
// errors that name the flag.
#include "experiments/spec/tune_flags.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

class TuneFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sp_tune_flags_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "ckpt");
    fs::create_directories(dir_ / "RTE");
    for (const char* file : {"train.jsonl", "val.jsonl"}) std::ofstream(dir_ / "RTE" / file);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Trial trial(std::vector<std::string> sets, const std::string& method = "prompt_tuning") {
    TuneFlags flags;
    flags.model = (dir_ / "ckpt").string();
    flags.task = "rte";
    flags.data = (dir_ / "RTE").string();
    flags.method = method;
    flags.sets = std::move(sets);
    return tune_trial(flags);
  }

  fs::path dir_;
};

TEST_F(TuneFlagsTest, ShortRunDefaultsAndTheSpecsOthers) {
  const Trial t = trial({});
  ASSERT_TRUE(t.tune);
  EXPECT_EQ(t.id, "tune");
  EXPECT_EQ(t.model.checkpoint, (dir_ / "ckpt").string());
  EXPECT_EQ(t.tokenizer.source, "checkpoint");
  EXPECT_EQ(t.tune->steps, 1000);
  EXPECT_EQ(t.tune->batch_size, 8);
  EXPECT_EQ(t.tune->inputs_length, 256);
  EXPECT_EQ(t.tune->targets_length, 8);
  EXPECT_EQ(t.tune->eval_every, 100);
  EXPECT_EQ(t.tune->checkpoint_every, 100);
  // The rest as a spec's stages.tune: the paper's prompt tuning.
  EXPECT_DOUBLE_EQ(t.tune->dropout, 0.1);
  EXPECT_EQ(t.tune->optimizer.name, "adafactor");
  EXPECT_DOUBLE_EQ(t.tune->optimizer.lr, 0.3);
  EXPECT_DOUBLE_EQ(t.tune->optimizer.weight_decay, 1e-5);
  EXPECT_EQ(t.tune->peft.method, "prompt_tuning");
  EXPECT_EQ(t.tune->task.name, "rte");
}

TEST_F(TuneFlagsTest, EachKindOfKeyLandsWhereItBelongs) {
  const Trial t = trial({"steps=20", "seed=3", "lr=0.5", "schedule=linear", "warmup_steps=4",
                         "optimizer=adamw", "optimizer.beta2=0.99", "length=7", "peft.seed=9",
                         "eval_split=train", "eval_every=0"});
  EXPECT_EQ(t.tune->steps, 20);
  EXPECT_EQ(t.tune->seed, 3u);
  EXPECT_EQ(t.seed, 3u);
  EXPECT_DOUBLE_EQ(t.tune->optimizer.lr, 0.5);
  EXPECT_EQ(t.tune->optimizer.schedule.kind, "linear");
  EXPECT_EQ(t.tune->optimizer.schedule.warmup_steps, 4);
  EXPECT_EQ(t.tune->optimizer.name, "adamw");
  EXPECT_DOUBLE_EQ(t.tune->optimizer.beta2, 0.99);
  EXPECT_EQ(t.tune->peft.settings.at("length"), 7);
  EXPECT_EQ(t.tune->peft.settings.at("seed"), 9);  // the training seed is another key
  EXPECT_EQ(t.tune->eval_split, "train");
}

TEST_F(TuneFlagsTest, ATrainingKeyWinsOverAMethodSettingOfTheSameName) {
  const Trial t = trial({"dropout=0.2", "peft.dropout=0.05"}, "lora");
  EXPECT_DOUBLE_EQ(t.tune->dropout, 0.2);
  EXPECT_DOUBLE_EQ(t.tune->peft.settings.at("dropout").get<double>(), 0.05);
}

TEST_F(TuneFlagsTest, RangesAreTheSpecsAndNameTheFlag) {
  EXPECT_THROW_MSG(trial({"inputs_length=0"}),
                   "--set inputs_length=0: stages.tune.inputs_length must be >= 2");
  EXPECT_THROW_MSG(trial({"seed=-1"}), "--set seed=-1: stages.tune.seed must be >= 0");
  EXPECT_THROW_MSG(trial({"dropout=1"}), "--set dropout=1: stages.tune.dropout must be in [0, 1)");
  EXPECT_THROW_MSG(trial({"z_loss=-1"}), "--set z_loss=-1: stages.tune.z_loss must be >= 0");
  EXPECT_THROW_MSG(trial({"lr=0"}), "--set lr=0: stages.tune.optimizer.lr must be positive");
  EXPECT_THROW_MSG(trial({"optimizer=adamw", "optimizer.beta2=1"}),
                   "--set optimizer.beta2=1: stages.tune.optimizer.beta2 must be in [0, 1)");
  EXPECT_THROW_MSG(trial({"steps=x"}), "--set steps=x");
  EXPECT_THROW_MSG(trial({"length=0"}), "--set length=0: stages.tune.peft.length");
  // A default of the command is located as one.
  EXPECT_THROW_MSG(trial({"steps=50", "early_stopping_patience=2"}),
                   "softprompt tune's default: stages.tune.eval_every (100) is more than steps");
}

TEST_F(TuneFlagsTest, UnknownKeysGetADidYouMeanOverBothKinds) {
  EXPECT_THROW_MSG(trial({"stesp=5"}), "--set stesp=5: unknown key 'stesp'");
  EXPECT_THROW_MSG(trial({"stesp=5"}), "did you mean 'steps'?");
  EXPECT_THROW_MSG(trial({"lenght=5"}), "did you mean 'length'?");
  // The method's seed (a training key's name too) is listed as peft.seed, once.
  EXPECT_THROW_MSG(trial({"bogus=1"}), "seed, dropout,");
  EXPECT_THROW_MSG(trial({"bogus=1"}), "class_label_ids, init_text_ids, peft.seed");
  EXPECT_THROW_MSG(trial({"optimizer.decay_rat=0.9"}),
                   "unknown key 'decay_rat' in stages.tune.optimizer; did you mean 'decay_rate'?");
  // Only the chosen optimizer's keys exist; another's says whose it is.
  EXPECT_THROW_MSG(trial({"optimizer.beta2=0.9"}),
                   "--set optimizer.beta2=0.9: stages.tune.optimizer.beta2 applies only to "
                   "optimizer adamw (this one is adafactor)");
  EXPECT_THROW_MSG(trial({"noequals"}), "--set noequals: expected key=value, e.g. --set steps=100");
}

TEST_F(TuneFlagsTest, KeysOfTheCommandsOwnFlagsAreRefused) {
  EXPECT_THROW_MSG(trial({"task=cb"}), "'task' is given by --task");
  EXPECT_THROW_MSG(trial({"data_dir=/x"}), "'data_dir' is given by --data");
  EXPECT_THROW_MSG(trial({"peft.method=lora"}), "'peft.method' is given by --method");
}

TEST_F(TuneFlagsTest, SplitsAndTheMethodAreCheckedBeforeAnyWork) {
  EXPECT_THROW_MSG(trial({"train_split=nope"}), "--set train_split=nope: stages.tune.train_split");
  EXPECT_THROW_MSG(trial({}, "prompt_tunning"), "did you mean 'prompt_tuning'?");
}

TEST_F(TuneFlagsTest, HelpListsEveryStageKeyButTheFlagOnes) {
  const std::vector<std::string> keys = tune_set_keys();
  for (const char* key : {"steps", "dropout", "z_loss", "lr", "schedule", "eval_split", "metric"})
    EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end()) << key;
  for (const char* key : {"task", "data_dir", "peft"})
    EXPECT_EQ(std::find(keys.begin(), keys.end(), key), keys.end()) << key;
}

}  // namespace
}  // namespace sp
