// TuneJob's data state: the (epoch, position) a checkpoint records, the states a resumed
// run must refuse because they cannot come from this data set, and a stopped tune run that
// resumes bit for bit.
#include "experiments/runner/tune_job.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "experiments/training/metrics_log.h"
#include "nn/optim/adafactor.h"
#include "nn/peft/peft.h"
#include "quiet_peft_log.h"
#include "temp_dir.h"
#include "test_util.h"
#include "tiny_t5.h"

namespace sp {
namespace {

TEST(TuneJob, DataStateRoundTripsAndRefusesStatesOutsideTheData) {
  QuietPeftLog quiet;
  T5ForConditionalGeneration model(tiny_t5_config());
  auto peft = make_peft("prompt_tuning", {{"length", 2}, {"init", "random_uniform"}});
  peft->attach(model);
  const std::vector<Seq2SeqExample> train = {
      {{5, 6, 1}, {7, 1}}, {{8, 1}, {9, 1}}, {{10, 11, 1}, {12, 1}}};
  TuneJob job(model, *peft, train, {.micro_batch_size = 2, .seed = 3}, nullptr, nullptr);
  job.micro_batch_loss(1, 0);  // two examples of epoch 0
  const nlohmann::json state = job.data_state();
  EXPECT_EQ(
      state,
      (nlohmann::json{
          {"epoch", 0}, {"position", 2}, {"seed", 3}, {"examples", 3}, {"micro_batch_size", 2}}));
  job.restore_data_state(state);
  EXPECT_EQ(job.data_state(), state);

  auto with = [&](const char* key, nlohmann::json value) {
    nlohmann::json s = state;
    s[key] = std::move(value);
    return s;
  };
  EXPECT_THROW_MSG(job.restore_data_state(with("position", 99999999999)),
                   "is outside the data set (3 examples)");
  EXPECT_THROW_MSG(job.restore_data_state(with("position", -1)), "is outside the data set");
  EXPECT_THROW_MSG(job.restore_data_state(with("epoch", -2)), "is outside the data set");
  EXPECT_THROW_MSG(job.restore_data_state(with("examples", 4)),
                   "is from another seed or data set (3, 3 examples)");
  job.restore_data_state(with("position", 3));  // the end of an epoch is a state a run saves

  // Another batch size goes on from the same example, and says so; a checkpoint from before
  // the batch size was recorded resumes without a word.
  ::testing::internal::CaptureStderr();
  job.restore_data_state(with("micro_batch_size", 8));
  EXPECT_EQ(job.data_state()["position"], 2);
  nlohmann::json old_state = state;
  old_state.erase("micro_batch_size");
  job.restore_data_state(old_state);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "[tune] resuming with micro-batch size 2 (the checkpoint's: 8)\n");
}

// A LoRA tune of `steps` steps in dir (resuming what is there): the model's and LoRA's
// dropout, shuffled epochs of 5 examples in micro-batches of 2 accumulated twice, Adafactor,
// an evaluation every 2 steps. Returns the trained tensors.
std::vector<std::vector<float>> tune_lora(const std::string& dir, int64_t steps) {
  QuietPeftLog quiet;
  T5Config config = tiny_t5_config();
  config.dropout_rate = 0.2;
  Generator dropout(11);
  T5ForConditionalGeneration model(config, DType::f32, &dropout);
  Generator init(3);
  model.init_weights(&init);
  auto peft = make_peft("lora", {{"rank", 2}, {"dropout", 0.3}, {"seed", 5}});
  peft->attach(model);
  const std::vector<Seq2SeqExample> train = {{{5, 6, 1}, {7, 1}},
                                             {{8, 1}, {9, 10, 1}},
                                             {{10, 11, 12, 1}, {12, 1}},
                                             {{13, 1}, {14, 15, 16, 1}},
                                             {{17, 18, 1}, {19, 1}}};
  TuneJob::Evaluator evaluator = [&](int64_t) {
    EvalResult r;
    double sum = 0;
    for (const auto& [name, t] : peft->trainable())
      for (float v : t.to_vector<float>()) sum += v;
    r.metrics["sum"] = sum;
    return std::optional<EvalResult>(r);
  };
  TuneJob job(model, *peft, train, {.micro_batch_size = 2, .seed = 7}, evaluator, &dropout);
  const NamedTensorList trainable = job.trainable();
  optim::Adafactor opt(tensors_of(trainable), names_of(trainable));
  opt.set_schedule(optim::Schedule::constant(0.05));
  TrainerOptions o;
  o.steps = steps;
  o.grad_accumulation = 2;
  o.eval_every = 2;
  o.checkpoint_every = 1;
  o.log_every = 1;
  o.out_dir = dir;
  o.progress = ProgressMode::off;
  o.export_model = false;
  Trainer(o, job, opt).run();
  std::vector<std::vector<float>> out;
  for (const auto& [name, t] : job.trainable()) out.push_back(t.to_vector<float>());
  return out;
}

TEST(TuneJob, AStoppedRunResumesBitForBit) {
  TempDir tmp;
  const std::string straight = (tmp.path / "straight").string();
  const std::string stopped = (tmp.path / "stopped").string();
  const auto a = tune_lora(straight, 6);
  // Steps 1..4 (ending on an evaluation step, so the end's evaluation is the scheduled one),
  // then new objects, as a new process, resume from its checkpoint.
  tune_lora(stopped, 4);
  const auto b = tune_lora(stopped, 6);
  EXPECT_EQ(a, b);
  const auto la = read_metrics(straight + "/metrics.jsonl");
  const auto lb = read_metrics(stopped + "/metrics.jsonl");
  ASSERT_EQ(la.size(), lb.size());
  const auto without_timings = [](nlohmann::json line) {
    for (const char* key : {"elapsed_s", "examples_per_s", "tokens_per_s"}) line.erase(key);
    return line.dump();
  };
  for (size_t i = 0; i < la.size(); ++i)
    EXPECT_EQ(without_timings(la[i]), without_timings(lb[i])) << "line " << i;
  // It trained: the last train line's loss is not the first's (the last line is the final
  // evaluation's).
  const auto last_train = std::find_if(la.rbegin(), la.rend(),
                                       [](const nlohmann::json& l) { return l.contains("loss"); });
  ASSERT_NE(last_train, la.rend());
  EXPECT_NE(la.front().at("loss"), last_train->at("loss"));
}

}  // namespace
}  // namespace sp
