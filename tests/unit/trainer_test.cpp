// The generic trainer: gradient accumulation, clipping, checkpoints and exact resume (with
// a real SIGKILL of a child process), NaN/Inf stops, evaluation and early stopping, the
// metrics file, progress lines, and the dtype policy.
#include "experiments/training/trainer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>

#include "autograd/ops.h"
#include "experiments/objectives/data_rng.h"
#include "experiments/training/checkpoint_dir.h"
#include "experiments/training/dtype_policy.h"
#include "experiments/training/interrupt.h"
#include "experiments/training/metrics_log.h"
#include "models/io/directory_lock.h"
#include "models/io/safetensors.h"
#include "models/t5/checkpoint.h"
#include "models/t5/t5_model.h"
#include "nn/dropout.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/optim/adafactor.h"
#include "nn/optim/adamw.h"
#include "nn/optim/sgd.h"
#include "temp_dir.h"
#include "test_util.h"

extern char** environ;

namespace sp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::lcg_values;

struct TrainerTempDir {
  std::string path;
  TrainerTempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sp_trainer_XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TrainerTempDir() { fs::remove_all(path); }
  std::string sub(const std::string& name) const { return (fs::path(path) / name).string(); }
};

// --- a tiny classifier with dropout, noisy inputs and shuffled epochs ----------------------

struct MlpConfig {
  int64_t micro_batch = 4;
  int64_t kill_at_step = 0;           // SIGKILL inside micro-batch 1 of this step
  int64_t kill_in_checkpoint_at = 0;  // SIGKILL while this step's checkpoint is written
  int64_t nan_loss_at = 0;
  int64_t nan_grad_at = 0;
  int64_t interrupt_at = 0;  // SIGINT (Ctrl-C) inside this step (its first micro-batch)
  std::vector<double> scripted_eval = {};  // eval "loss" values in order, instead of computing it
  json evaluation = nullptr;               // evaluation_identity()
};

class TinyMlp : public Module {
 public:
  explicit TinyMlp(Generator& init) : l1(4, 16), drop(0.25), l2(16, 3) {
    register_module("l1", &l1);
    register_module("drop", &drop);
    register_module("l2", &l2);
    init::normal_(l1.weight, 0, 0.5, &init);
    init::normal_(l2.weight, 0, 0.5, &init);
  }
  // x: [B, 4] -> [B, 3]
  Tensor forward(const Tensor& x) const { return l2.forward(drop.forward(relu(l1.forward(x)))); }
  Linear l1;
  Dropout drop;  // the default generator: its state must survive a resume
  Linear l2;
};

// Labels from a fixed linear rule: argmax over 3 classes of M x.
std::pair<std::vector<float>, std::vector<int64_t>> make_data(int64_t n, uint64_t seed) {
  const std::vector<double> v = lcg_values(n * 4, seed);
  const std::vector<double> m = lcg_values(12, 5);
  std::vector<float> x(v.begin(), v.end());
  std::vector<int64_t> y(n);
  for (int64_t i = 0; i < n; ++i) {
    double best = -1e9;
    for (int64_t c = 0; c < 3; ++c) {
      double s = 0;
      for (int64_t k = 0; k < 4; ++k) s += m[c * 4 + k] * v[i * 4 + k];
      if (s > best) best = s, y[i] = c;
    }
  }
  return {x, y};
}

class MlpJob : public TrainingJob {
 public:
  explicit MlpJob(MlpConfig c = {}) : cfg_(std::move(c)), init_(7), noise_(99), model_(init_) {
    std::tie(x_, y_) = make_data(kTrain, 1);
    std::tie(ex_, ey_) = make_data(16, 2);
    shuffle_epoch();
  }

  StepResult micro_batch_loss(int64_t step, int64_t micro) override {
    current_step_ = step;
    ++calls_;
    if (step == cfg_.kill_at_step && micro == 1) ::kill(::getpid(), SIGKILL);
    if (step == cfg_.interrupt_at && micro == 0) std::raise(SIGINT);
    const int64_t b = cfg_.micro_batch;
    std::vector<float> xs;
    std::vector<int64_t> ys;
    for (int64_t i = 0; i < b; ++i) {
      if (pos_ == kTrain) {
        ++epoch_;
        pos_ = 0;
        shuffle_epoch();
      }
      const int64_t e = order_[pos_++];
      xs.insert(xs.end(), x_.begin() + e * 4, x_.begin() + e * 4 + 4);
      ys.push_back(y_[e]);
    }
    Tensor x = Tensor::from_vector(xs, Shape{b, 4});
    x = x + normal(x.shape(), 0, 0.05, DType::f32, &noise_);
    Tensor loss = cross_entropy(model_.forward(x), Tensor::from_vector(ys, Shape{b}));
    if (step == cfg_.nan_loss_at) loss = loss * std::nan("");
    // sqrt's gradient at 0 is infinite; times the zero of w * 0 it is NaN.
    if (step == cfg_.nan_grad_at) loss = loss + sum(sqrt(model_.l1.weight * 0.0));
    return {loss, b, b * 4};
  }

  std::optional<EvalResult> evaluate(int64_t step) override {
    ++evals_;
    if (!cfg_.scripted_eval.empty())
      return EvalResult{{{"loss", cfg_.scripted_eval.at(evals_ - 1)}}};
    EXPECT_FALSE(model_.is_training());
    const Tensor logits = model_.forward(Tensor::from_vector(ex_, Shape{16, 4}));
    const double loss = cross_entropy(logits, Tensor::from_vector(ey_, Shape{16})).item<double>();
    const std::vector<float> l = logits.to_vector<float>();
    int64_t right = 0;
    for (int64_t i = 0; i < 16; ++i) {
      const auto* row = l.data() + i * 3;
      right += std::max_element(row, row + 3) - row == ey_[i];
    }
    return EvalResult{{{"loss", loss}, {"accuracy", right / 16.0}}};
  }

  NamedTensorList trainable() override { return model_.named_parameters(); }
  json evaluation_identity() override { return cfg_.evaluation; }

  json data_state() override {
    if (cfg_.kill_in_checkpoint_at > 0 && current_step_ == cfg_.kill_in_checkpoint_at)
      ::kill(::getpid(), SIGKILL);
    return {{"epoch", epoch_}, {"pos", pos_}};
  }
  void restore_data_state(const json& s) override {
    epoch_ = s.at("epoch").get<int64_t>();
    pos_ = s.at("pos").get<int64_t>();
    shuffle_epoch();
  }
  void save_model(const std::string& dir) override {
    save_safetensors(dir + "/model.safetensors", model_.state_dict());
  }
  std::vector<std::pair<std::string, Generator*>> generators() override {
    return {{"noise", &noise_}};
  }
  void set_training(bool training) override { model_.train(training); }

  TinyMlp& model() { return model_; }
  int64_t calls() const { return calls_; }

 private:
  static constexpr int64_t kTrain = 24;
  void shuffle_epoch() {
    order_.resize(kTrain);
    std::iota(order_.begin(), order_.end(), 0);
    DataRng rng(11, static_cast<uint64_t>(epoch_));
    rng.shuffle(order_);
  }

  MlpConfig cfg_;
  Generator init_;
  Generator noise_;
  TinyMlp model_;
  std::vector<float> x_, ex_;
  std::vector<int64_t> y_, ey_;
  std::vector<int64_t> order_;
  int64_t epoch_ = 0, pos_ = 0, current_step_ = 0, calls_ = 0, evals_ = 0;
};

struct MlpRun {
  TrainResult result;
  int64_t calls = 0;
  std::vector<std::vector<float>> params;
};

MlpRun train_mlp(const TrainerOptions& options, MlpConfig cfg = {}) {
  MlpJob job(std::move(cfg));
  const NamedTensorList tr = job.trainable();
  optim::AdamW opt(tensors_of(tr), names_of(tr), {.weight_decay = 0.01});
  opt.set_schedule(optim::Schedule::linear(0.05, options.steps).with_warmup(3));
  Trainer trainer(options, job, opt);
  MlpRun run;
  run.result = trainer.run();
  run.calls = job.calls();
  for (const auto& [name, t] : job.trainable()) run.params.push_back(t.to_vector<float>());
  return run;
}

// dir/model, the exported MLP, holds params (in MlpJob::trainable()'s order).
void expect_export_holds(const std::string& dir, const std::vector<std::vector<float>>& params) {
  SafetensorsFile model = SafetensorsFile::open(dir + "/model/model.safetensors");
  const std::vector<std::string> names = {"l1.weight", "l1.bias", "l2.weight", "l2.bias"};
  ASSERT_EQ(params.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i)
    EXPECT_EQ(model.tensor(names[i]).to_vector<float>(), params[i]) << names[i];
}

// The configuration of the resume test: checkpoints every 3 steps, train lines every 2
// (a checkpoint in the middle of a window), evaluation every 5 (a new best adds a
// checkpoint), accumulation 2, clipping.
TrainerOptions resume_options(const std::string& dir) {
  TrainerOptions o;
  o.steps = 14;
  o.grad_accumulation = 2;
  o.log_every = 2;
  o.eval_every = 5;
  o.checkpoint_every = 3;
  o.keep_last = 2;
  o.metric = "loss";
  o.higher_is_better = false;
  o.clip_global_norm = 1.0;
  o.out_dir = dir;
  o.progress = ProgressMode::off;
  o.seed = 1234;
  return o;
}

// Runs this test binary again as TrainerChild.DISABLED_TrainUntilKilled on dir; returns
// the wait status.
int run_child(const std::string& dir, int64_t kill_at_step, int64_t kill_in_checkpoint_at) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  env_strings.push_back("SP_TRAINER_CHILD=" + dir + "|" + std::to_string(kill_at_step) + "|" +
                        std::to_string(kill_in_checkpoint_at));
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string a0 = "/proc/self/exe", a1 = "--gtest_filter=TrainerChild.DISABLED_TrainUntilKilled",
              a2 = "--gtest_also_run_disabled_tests";
  char* argv[] = {a0.data(), a1.data(), a2.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = dir + ".child.log";
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  // posix_spawn execs at once (no fork of a process whose OpenMP pool is running).
  const int rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "posix_spawn failed";
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

bool killed_by_sigkill(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }

int64_t last_metrics_step(const std::string& dir) {
  const auto lines = read_metrics(dir + "/metrics.jsonl");
  return lines.empty() ? 0 : lines.back()["step"].get<int64_t>();
}

TEST(TrainerChild, DISABLED_TrainUntilKilled) {
  const char* env = std::getenv("SP_TRAINER_CHILD");
  if (!env) GTEST_SKIP() << "run by Trainer.ExactResumeAfterSigkill";
  std::stringstream ss(env);
  std::string dir, a, b;
  std::getline(ss, dir, '|');
  std::getline(ss, a, '|');
  std::getline(ss, b, '|');
  MlpConfig cfg;
  cfg.kill_at_step = std::stoll(a);
  cfg.kill_in_checkpoint_at = std::stoll(b);
  train_mlp(resume_options(dir), cfg);
}

TEST(Trainer, ExactResumeAfterSigkill) {
  TrainerTempDir tmp;
  const std::string straight = tmp.sub("straight"), killed = tmp.sub("killed");
  const MlpRun a = train_mlp(resume_options(straight));
  EXPECT_EQ(a.result.steps_done, 14);
  EXPECT_EQ(a.result.stop_reason, "steps");
  EXPECT_EQ(a.calls, 28);

  // Killed in the middle of step 8: the checkpoint of step 6 is the resume point.
  EXPECT_TRUE(killed_by_sigkill(run_child(killed, 8, 0)));
  EXPECT_EQ(checkpoint_dir::resume_step(killed + "/checkpoints"), 6);
  EXPECT_EQ(last_metrics_step(killed), 6);
  // Killed while writing step 9's checkpoint (its tensors are on disk, its state is not):
  // step 6 stays the resume point and step 8's train line is past it.
  EXPECT_TRUE(killed_by_sigkill(run_child(killed, 0, 9)));
  EXPECT_EQ(checkpoint_dir::resume_step(killed + "/checkpoints"), 6);
  bool temporary_left = false;
  for (const auto& e : fs::directory_iterator(killed + "/checkpoints"))
    temporary_left |= e.path().filename().string().rfind(".tmp-step-9", 0) == 0;
  EXPECT_TRUE(temporary_left);
  EXPECT_EQ(last_metrics_step(killed), 8);
  // Killed in step 10: resumes at 9, whose checkpoint holds half a metrics window.
  EXPECT_TRUE(killed_by_sigkill(run_child(killed, 10, 0)));
  EXPECT_EQ(checkpoint_dir::resume_step(killed + "/checkpoints"), 9);
  EXPECT_EQ(last_metrics_step(killed), 8);

  const MlpRun b = train_mlp(resume_options(killed));
  EXPECT_EQ(b.result.resumed_from, 9);
  EXPECT_EQ(b.result.steps_done, 14);
  EXPECT_EQ(b.calls, 10);  // steps 10..14, two micro-batches each

  // Bit-identical parameters.
  ASSERT_EQ(a.params.size(), b.params.size());
  for (size_t i = 0; i < a.params.size(); ++i)
    EXPECT_EQ(0, std::memcmp(a.params[i].data(), b.params[i].data(), a.params[i].size() * 4))
        << "parameter " << i;
  // The same loss curve and evaluations, step for step, with no step twice.
  const auto la = read_metrics(straight + "/metrics.jsonl");
  const auto lb = read_metrics(killed + "/metrics.jsonl");
  ASSERT_EQ(la.size(), lb.size());
  for (size_t i = 0; i < la.size(); ++i) {
    for (const char* key :
         {"step", "loss", "lr", "grad_norm", "examples", "tokens", "eval", "best"})
      EXPECT_EQ(la[i].value(key, json()), lb[i].value(key, json())) << "line " << i << " " << key;
  }
  EXPECT_EQ(la.size(), 7u + 3u);  // train lines at 2, 4, ..., 14; evals at 5, 10, 14
  EXPECT_EQ(a.result.best_step, b.result.best_step);
  EXPECT_EQ(a.result.best_metric, b.result.best_metric);
  // The crash's temporary directory is gone; the last 2 checkpoints and the best are kept.
  for (const auto& e : fs::directory_iterator(killed + "/checkpoints"))
    EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u) << e.path();
  std::vector<int64_t> expect = {12, 14};
  if (a.result.best_step != 12 && a.result.best_step != 14)
    expect.insert(expect.begin(), a.result.best_step);
  EXPECT_EQ(checkpoint_dir::list_steps(killed + "/checkpoints"), expect);
  EXPECT_EQ(checkpoint_dir::list_steps(straight + "/checkpoints"), expect);
}

// --- a tiny T5 with dropout on its own generator ------------------------------------------

class TinyT5Job : public TrainingJob {
 public:
  explicit TinyT5Job(int64_t fail_at_step = 0) : fail_at_(fail_at_step), dropout_(3) {
    T5Config c;
    c.vocab_size = 24;
    c.d_model = 16;
    c.d_kv = 4;
    c.num_heads = 2;
    c.d_ff = 32;
    c.num_layers = 1;
    c.num_decoder_layers = 1;
    c.relative_attention_num_buckets = 8;
    c.relative_attention_max_distance = 16;
    c.dropout_rate = 0.2;
    model_ = std::make_unique<T5ForConditionalGeneration>(c, DType::f32, &dropout_);
    Generator init(17);
    model_->init_weights(&init);
  }
  StepResult micro_batch_loss(int64_t step, int64_t) override {
    SP_CHECK(step != fail_at_, "[test] simulated crash at step ", step);
    // A copy task over ids 2..23 whose batch depends on the position in the stream.
    std::vector<int64_t> ids(2 * 6);
    for (size_t i = 0; i < ids.size(); ++i)
      ids[i] = 2 + (pos_ * 7 + static_cast<int64_t>(i) * 5) % 22;
    ++pos_;
    T5Inputs in;
    in.input_ids = Tensor::from_vector(ids, Shape{2, 6});
    in.labels = in.input_ids;
    return {model_->forward(in).loss, 2, 24};
  }
  NamedTensorList trainable() override { return model_->named_parameters(); }
  json data_state() override { return {{"pos", pos_}}; }
  void restore_data_state(const json& s) override { pos_ = s.at("pos").get<int64_t>(); }
  void save_model(const std::string& dir) override { save_t5(*model_, dir); }
  std::vector<std::pair<std::string, Generator*>> generators() override {
    return {{"t5_dropout", &dropout_}};
  }
  void set_training(bool training) override { model_->train(training); }

 private:
  int64_t fail_at_;
  int64_t pos_ = 0;
  Generator dropout_;
  std::unique_ptr<T5ForConditionalGeneration> model_;
};

std::vector<std::vector<float>> train_t5(const std::string& dir, int64_t fail_at_step = 0) {
  TinyT5Job job(fail_at_step);
  const NamedTensorList tr = job.trainable();
  optim::Adafactor opt(tensors_of(tr), names_of(tr));
  opt.set_schedule(optim::Schedule::constant(0.01));
  TrainerOptions o;
  o.steps = 6;
  o.checkpoint_every = 2;
  o.log_every = 1;
  o.out_dir = dir;
  o.progress = ProgressMode::off;
  Trainer(o, job, opt).run();
  std::vector<std::vector<float>> params;
  for (const auto& [name, t] : job.trainable()) params.push_back(t.to_vector<float>());
  return params;
}

TEST(Trainer, TinyT5ResumesExactlyWithDropout) {
  TrainerTempDir tmp;
  const auto straight = train_t5(tmp.sub("straight"));
  EXPECT_THROW_MSG(train_t5(tmp.sub("crashed"), 5), "simulated crash at step 5");
  const auto resumed = train_t5(tmp.sub("crashed"));
  EXPECT_EQ(straight, resumed);
  const auto la = read_metrics(tmp.sub("straight") + "/metrics.jsonl");
  const auto lb = read_metrics(tmp.sub("crashed") + "/metrics.jsonl");
  ASSERT_EQ(la.size(), 6u);
  ASSERT_EQ(lb.size(), 6u);
  for (size_t i = 0; i < la.size(); ++i)
    EXPECT_EQ(la[i]["loss"], lb[i]["loss"]) << "step " << i + 1;
  EXPECT_LT(la.back()["loss"].get<double>(), la.front()["loss"].get<double>());
  // The export is a Hugging Face checkpoint that loads back.
  EXPECT_NO_THROW(load_t5(tmp.sub("straight") + "/model"));
}

// --- gradient accumulation and clipping on a f64 regression -----------------------------

// Least squares on a fixed data set, b examples of 2 outputs per micro-batch. masked: some
// outputs do not count (as padded target tokens), a different number per micro-batch, and
// the loss is the mean over those that do, reported as its loss_terms.
class RegressionJob : public TrainingJob {
 public:
  explicit RegressionJob(int64_t micro_batch, bool masked = false)
      : b_(micro_batch), masked_(masked), lin_(3, 2, true, DType::f64) {
    x_ = lcg_values(32 * 3, 3);
    y_ = lcg_values(32 * 2, 4);
    init::constant_(lin_.weight, 0.1);
  }
  StepResult micro_batch_loss(int64_t, int64_t) override {
    std::vector<double> xs(x_.begin() + pos_ * 3, x_.begin() + (pos_ + b_) * 3);
    std::vector<double> ys(y_.begin() + pos_ * 2, y_.begin() + (pos_ + b_) * 2);
    std::vector<double> keep;
    for (int64_t i = 0; i < b_ * 2; ++i) keep.push_back((pos_ * 2 + i) % 7 < 3 ? 0.0 : 1.0);
    pos_ = (pos_ + b_) % 32;
    Tensor pred = lin_.forward(Tensor::from_vector(xs, Shape{b_, 3}, DType::f64));
    Tensor diff = pred - Tensor::from_vector(ys, Shape{b_, 2}, DType::f64);
    if (!masked_) return {mean(square(diff)), b_, b_};
    StepResult r{square(diff), b_, b_};
    double kept = 0;
    for (double k : keep) kept += k;
    r.loss = sum(r.loss * Tensor::from_vector(keep, Shape{b_, 2}, DType::f64)) * (1.0 / kept);
    r.loss_terms = static_cast<int64_t>(kept);
    return r;
  }
  NamedTensorList trainable() override { return lin_.named_parameters(); }
  json data_state() override { return {{"pos", pos_}}; }
  void restore_data_state(const json& s) override { pos_ = s.at("pos").get<int64_t>(); }
  void save_model(const std::string&) override {}
  Linear& lin() { return lin_; }

 private:
  int64_t b_;
  bool masked_;
  int64_t pos_ = 0;
  Linear lin_;
  std::vector<double> x_, y_;
};

std::vector<double> train_regression(const std::string& dir, int64_t micro, int64_t accumulation,
                                     double clip = 0, bool masked = false) {
  RegressionJob job(micro, masked);
  const NamedTensorList tr = job.trainable();
  optim::SGD opt(tensors_of(tr), names_of(tr));
  opt.set_schedule(optim::Schedule::constant(clip > 0 ? 1.0 : 0.1));
  TrainerOptions o;
  o.steps = clip > 0 ? 1 : 3;
  o.grad_accumulation = accumulation;
  o.log_every = 1;
  o.clip_global_norm = clip;
  o.out_dir = dir;
  o.progress = ProgressMode::off;
  o.export_model = false;
  Trainer(o, job, opt).run();
  std::vector<double> p = job.lin().weight.to_vector<double>();
  for (double v : job.lin().bias.to_vector<double>()) p.push_back(v);
  return p;
}

TEST(Trainer, GradAccumulationEqualsOneLargeBatch) {
  TrainerTempDir tmp;
  const std::vector<double> big = train_regression(tmp.sub("big"), 8, 1);
  const std::vector<double> accumulated = train_regression(tmp.sub("acc"), 2, 4);
  ASSERT_EQ(big.size(), accumulated.size());
  double moved = 0;
  for (size_t i = 0; i < big.size(); ++i) {
    EXPECT_NEAR(big[i], accumulated[i], 1e-13) << "parameter element " << i;
    moved += std::abs(big[i] - (i < 6 ? 0.1 : 0.0));
  }
  EXPECT_GT(moved, 1e-2);  // the steps did move the parameters
  // The train lines count every micro-batch's examples and average their losses.
  const auto acc = read_metrics(tmp.sub("acc") + "/metrics.jsonl");
  const auto one = read_metrics(tmp.sub("big") + "/metrics.jsonl");
  ASSERT_EQ(acc.size(), 3u);
  EXPECT_EQ(acc[0]["examples"], 8);
  EXPECT_NEAR(acc[0]["loss"].get<double>(), one[0]["loss"].get<double>(), 1e-12);
}

// Micro-batches with different numbers of counted terms (padded targets): each weighs by
// its count, so accumulating them is still one batch's mean over every counted term.
TEST(Trainer, GradAccumulationWeighsMicroBatchesByTheirTerms) {
  TrainerTempDir tmp;
  const std::vector<double> big = train_regression(tmp.sub("big"), 8, 1, 0, /*masked=*/true);
  const std::vector<double> accumulated = train_regression(tmp.sub("acc"), 2, 4, 0, true);
  ASSERT_EQ(big.size(), accumulated.size());
  for (size_t i = 0; i < big.size(); ++i)
    EXPECT_NEAR(big[i], accumulated[i], 1e-13) << "parameter element " << i;
  const auto acc = read_metrics(tmp.sub("acc") + "/metrics.jsonl");
  const auto one = read_metrics(tmp.sub("big") + "/metrics.jsonl");
  EXPECT_NEAR(acc[0]["loss"].get<double>(), one[0]["loss"].get<double>(), 1e-12);
  // Equal weights (the mean of the micro-batch means) would have moved elsewhere.
  RegressionJob probe(2, true);
  std::set<int64_t> terms;
  for (int k = 0; k < 4; ++k) terms.insert(probe.micro_batch_loss(1, k).loss_terms);
  EXPECT_GT(terms.size(), 1u) << "the micro-batches must differ for this test to mean anything";
}

TEST(Trainer, ClipsTheGlobalNorm) {
  TrainerTempDir tmp;
  const std::vector<double> p = train_regression(tmp.sub("clip"), 8, 1, /*clip=*/1e-3);
  double norm2 = 0;
  for (size_t i = 0; i < p.size(); ++i) norm2 += std::pow(p[i] - (i < 6 ? 0.1 : 0.0), 2);
  EXPECT_NEAR(std::sqrt(norm2), 1e-3, 1e-12);  // SGD with lr 1 moves by the clipped gradient
  const auto lines = read_metrics(tmp.sub("clip") + "/metrics.jsonl");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_GT(lines[0]["grad_norm"].get<double>(), 1e-2);  // the norm before clipping
}

// --- NaN/Inf ----------------------------------------------------------------------------

TrainerOptions small_options(const std::string& dir, int64_t steps) {
  TrainerOptions o;
  o.steps = steps;
  o.log_every = 1;
  o.checkpoint_every = 2;
  o.out_dir = dir;
  o.progress = ProgressMode::off;
  o.seed = 5;
  return o;
}

TEST(Trainer, NonFiniteLossStopsAndKeepsTheLastCheckpoint) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("nan");
  EXPECT_THROW_MSG(
      train_mlp(small_options(dir, 8), MlpConfig{.nan_loss_at = 5, .scripted_eval = {}}),
      "[trainer] step 5: the loss of micro-batch 0 is nan");
  EXPECT_EQ(checkpoint_dir::resume_step(dir + "/checkpoints"), 4);
  EXPECT_EQ(last_metrics_step(dir), 4);
  // The resumed run (the NaN gone) ends where an uninterrupted one does.
  const MlpRun resumed = train_mlp(small_options(dir, 8));
  EXPECT_EQ(resumed.result.resumed_from, 4);
  const MlpRun straight = train_mlp(small_options(tmp.sub("straight"), 8));
  EXPECT_EQ(resumed.params, straight.params);
}

// Ctrl-C finishes the step it came in, writes that step's checkpoint (off the schedule)
// and stops; the rerun resumes there and ends as an uninterrupted run does. Outside a
// trainer's run the default action is back.
TEST(Trainer, InterruptStopsAfterTheStepWithACheckpoint) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("int");
  TrainerOptions o = small_options(dir, 8);
  o.checkpoint_every = 4;
  ::testing::internal::CaptureStderr();
  try {
    train_mlp(o, MlpConfig{.interrupt_at = 3, .scripted_eval = {}});
    ADD_FAILURE() << "expected Interrupted";
  } catch (const Interrupted& e) {
    EXPECT_NE(std::string(e.what()).find("[trainer] interrupted at step 3 of " + dir +
                                         ": checkpoint step-3 written; run the same command "
                                         "again to resume"),
              std::string::npos)
        << e.what();
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("interrupted: stopping after this step to write a checkpoint"),
            std::string::npos)
      << err;
  EXPECT_EQ(checkpoint_dir::resume_step(dir + "/checkpoints"), 3);
  EXPECT_EQ(last_metrics_step(dir), 3);
  const MlpRun resumed = train_mlp(o);
  EXPECT_EQ(resumed.result.resumed_from, 3);
  EXPECT_EQ(resumed.params, train_mlp(small_options(tmp.sub("straight"), 8)).params);
  struct sigaction now;
  sigaction(SIGINT, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

TEST(Trainer, NonFiniteGradientNamesTheParameter) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("nan");
  EXPECT_THROW_MSG(
      train_mlp(small_options(dir, 8), MlpConfig{.nan_grad_at = 3, .scripted_eval = {}}),
      "[trainer] step 3: gradient of 'l1.weight' has 64 non-finite values");
  EXPECT_EQ(checkpoint_dir::resume_step(dir + "/checkpoints"), 2);
}

// --- evaluation, early stopping, best checkpoint, export -------------------------------

TEST(Trainer, EarlyStoppingKeepsAndExportsTheBest) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("es");
  TrainerOptions o = small_options(dir, 40);
  o.checkpoint_every = 0;
  o.keep_last = 1;
  o.eval_every = 2;
  o.early_stopping_patience = 2;
  o.metric = "loss";
  o.higher_is_better = false;
  const MlpRun r = train_mlp(o, {.scripted_eval = {3, 2, 2.5, 2.6, 2.7, 1.0}});
  EXPECT_EQ(r.result.stop_reason, "early_stopping");
  EXPECT_EQ(r.result.steps_done, 8);
  EXPECT_EQ(r.result.best_step, 4);
  EXPECT_EQ(r.result.best_metric, 2.0);
  EXPECT_EQ(checkpoint_dir::list_steps(dir + "/checkpoints"), (std::vector<int64_t>{4, 8}));
  // The export and the trainable tensors hold the best checkpoint's parameters.
  SafetensorsFile best = SafetensorsFile::open(dir + "/checkpoints/step-4/params.safetensors");
  std::vector<std::vector<float>> best_params;
  for (const char* name : {"l1.weight", "l1.bias", "l2.weight", "l2.bias"})
    best_params.push_back(best.tensor(name).to_vector<float>());
  expect_export_holds(dir, best_params);
  EXPECT_EQ(r.params, best_params);
  std::vector<bool> best_flags;
  for (const json& l : read_metrics(dir + "/metrics.jsonl"))
    if (l.contains("eval")) best_flags.push_back(l["best"].get<bool>());
  EXPECT_EQ(best_flags, (std::vector<bool>{true, true, false, false}));

  // Running the finished directory again trains nothing and reports the same.
  const MlpRun again = train_mlp(o, {.scripted_eval = {9}});
  EXPECT_EQ(again.calls, 0);
  EXPECT_EQ(again.result.stop_reason, "early_stopping");
  EXPECT_EQ(again.result.best_step, 4);
  EXPECT_EQ(again.params, r.params);
}

// A checkpoint whose trainable tensor is stored as integers is refused by name on resume,
// not converted into a parameter of rounded values.
TEST(Trainer, ResumeRefusesAnIntegerParameter) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("int");
  train_mlp(small_options(dir, 4));
  const std::string params = dir + "/checkpoints/step-4/params.safetensors";
  NamedTensors stored;
  {
    SafetensorsFile f = SafetensorsFile::open(params);
    for (const std::string& name : f.names())
      stored.emplace_back(name, name == "l1.bias"
                                    ? Tensor::zeros(f.tensor(name).shape(), DType::i32)
                                    : f.tensor(name));
  }
  save_safetensors(params, stored);
  EXPECT_THROW_MSG(train_mlp(small_options(dir, 6)), "l1.bias: expected a floating dtype, got I32");
}

TEST(Trainer, FinishedRunContinuesWhenAskedForMoreSteps) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("more");
  const MlpRun first = train_mlp(small_options(dir, 4));
  EXPECT_EQ(first.calls, 4);
  EXPECT_EQ(first.result.earlier_seconds, 0);
  const json state = json::parse(read_text(dir + "/checkpoints/step-4/state.json"));
  const MlpRun more = train_mlp(small_options(dir, 6));
  EXPECT_EQ(more.result.resumed_from, 4);
  EXPECT_EQ(more.calls, 2);
  EXPECT_EQ(more.result.steps_done, 6);
  // The first process's time, for the whole run's.
  EXPECT_GT(more.result.earlier_seconds, 0);
  EXPECT_EQ(more.result.earlier_seconds, state["elapsed_s"].get<double>());
}

// A finished run continued to more steps that crashes after its final checkpoint but
// before the export must not leave the first run's model as the export: running the
// directory again exports the final parameters, as an uninterrupted run does.
TEST(Trainer, ContinuedRunCrashingBeforeTheExportDoesNotKeepTheOldModel) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("stale");
  TrainerOptions o = small_options(dir, 4);
  o.keep_best = false;  // the export is the final parameters
  ASSERT_EQ(train_mlp(o).result.steps_done, 4);
  ASSERT_TRUE(fs::exists(dir + "/model/model.safetensors"));
  o.steps = 6;
  {
    struct CrashingExportJob : MlpJob {
      void save_model(const std::string&) override { SP_CHECK(false, "[test] crash in export"); }
    } job;
    const NamedTensorList tr = job.trainable();
    optim::AdamW opt(tensors_of(tr), names_of(tr), {.weight_decay = 0.01});
    opt.set_schedule(optim::Schedule::linear(0.05, o.steps).with_warmup(3));
    EXPECT_THROW_MSG(Trainer(o, job, opt).run(), "crash in export");
  }
  EXPECT_EQ(checkpoint_dir::resume_step(dir + "/checkpoints"), 6);
  const MlpRun again = train_mlp(o);
  EXPECT_EQ(again.calls, 0);
  EXPECT_EQ(again.result.steps_done, 6);
  expect_export_holds(dir, again.params);
}

// Asked for no more steps than an unfinished checkpoint has (a run that went on from an
// export and stopped), the run exports that checkpoint, not the earlier export, and ends
// as its last step would have: evaluated there and checkpointed as finished.
TEST(Trainer, LoweredStepsExportTheUnfinishedCheckpointNotAnOlderModel) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("lowered");
  TrainerOptions o = small_options(dir, 4);
  o.keep_best = false;  // the export is the final parameters
  ASSERT_EQ(train_mlp(o).result.steps_done, 4);
  o.steps = 10;
  EXPECT_THROW_MSG(train_mlp(o, MlpConfig{.nan_loss_at = 7, .scripted_eval = {}}),
                   "step 7: the loss of micro-batch 0 is nan");
  ASSERT_EQ(checkpoint_dir::resume_step(dir + "/checkpoints"), 6);
  o.steps = 6;
  const MlpRun again = train_mlp(o);
  EXPECT_EQ(again.calls, 0);
  EXPECT_EQ(again.result.steps_done, 6);
  expect_export_holds(dir, again.params);
  ASSERT_TRUE(again.result.final_eval.has_value());
  const std::vector<json> lines = read_metrics(dir + "/metrics.jsonl");
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back()["step"], 6);
  EXPECT_TRUE(lines.back().contains("eval"));
  const json state = json::parse(read_text(dir + "/checkpoints/step-6/state.json"));
  EXPECT_TRUE(state["finished"].get<bool>());
  EXPECT_EQ(state["stop_reason"], "steps");
  // Finished now: another run evaluates nothing more.
  const size_t n = read_metrics(dir + "/metrics.jsonl").size();
  EXPECT_EQ(train_mlp(o).calls, 0);
  EXPECT_EQ(read_metrics(dir + "/metrics.jsonl").size(), n);
}

// A second process training into a directory in use is refused before it changes anything
// there (it would remove the first one's temporaries and overwrite its checkpoints).
TEST(Trainer, ADirectoryInUseIsRefused) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("locked");
  train_mlp(small_options(dir, 4));
  {
    const DirectoryLock other(dir, "[test]", "the test");
    EXPECT_THROW_MSG(train_mlp(small_options(dir, 6)),
                     "[trainer] " + dir + " is in use by another training process (" + dir +
                         "/.lock is locked)");
    EXPECT_EQ(checkpoint_dir::resume_step(dir + "/checkpoints"), 4);
  }
  EXPECT_EQ(train_mlp(small_options(dir, 6)).result.resumed_from, 4);
}

// A checkpoint's evaluations were scored on one set: resuming with another is refused
// (its best and patience would compare two sets' scores), unless nothing was scored yet.
TEST(Trainer, ResumeEvaluatingAnotherSetIsRefused) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("eval_set");
  TrainerOptions o = small_options(dir, 4);
  o.eval_every = 2;
  const json set_a = {{"split", "validation"}, {"examples", 16}};
  train_mlp(o, MlpConfig{.evaluation = set_a});
  o.steps = 6;
  const json set_b = {{"split", "validation"}, {"examples", 8}};
  EXPECT_THROW_MSG(train_mlp(o, MlpConfig{.evaluation = set_b}),
                   "[trainer] " + dir + "/checkpoints/step-4/state.json holds evaluations of " +
                       set_a.dump() + " but this run evaluates " + set_b.dump() +
                       ": its best checkpoint and early stopping would compare scores of two "
                       "evaluation sets");
  EXPECT_EQ(train_mlp(o, MlpConfig{.evaluation = set_a}).result.resumed_from, 4);

  // No evaluation yet: nothing to compare, another set is fine.
  const std::string fresh = tmp.sub("no_evals");
  TrainerOptions n = small_options(fresh, 4);
  n.eval_every = 0;
  n.eval_at_end = false;
  train_mlp(n, MlpConfig{.evaluation = set_a});
  n.steps = 6;
  EXPECT_EQ(train_mlp(n, MlpConfig{.evaluation = set_b}).result.resumed_from, 4);
}

// Adafactor with momentum keeps slots named and shaped as AdamW's on these small
// parameters, so only the saved optimizer name can tell the two apart.
TEST(Trainer, ResumeWithAnotherOptimizerIsRefused) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("switch");
  train_mlp(small_options(dir, 4));  // AdamW
  MlpJob job{MlpConfig{}};
  const NamedTensorList tr = job.trainable();
  optim::AdafactorOptions momentum;
  momentum.beta1 = 0.9;
  optim::Adafactor opt(tensors_of(tr), names_of(tr), momentum);
  opt.set_schedule(optim::Schedule::constant(0.01));
  Trainer trainer(small_options(dir, 6), job, opt);
  EXPECT_THROW_MSG(trainer.run(),
                   "holds the state of adamw but this run optimizes with adafactor: resume with "
                   "the same optimizer, or start in a new directory");
}

// The best checkpoint and early stopping compare each evaluation with the saved best: a
// resume that asks for another metric, or the other direction, is refused.
TEST(Trainer, ResumeWithAnotherBestMetricIsRefused) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("metric");
  TrainerOptions o = small_options(dir, 4);
  o.eval_every = 2;
  o.metric = "loss";
  o.higher_is_better = false;
  train_mlp(o);
  const std::string state = dir + "/checkpoints/step-4/state.json";
  TrainerOptions other = o;
  other.steps = 6;
  other.metric = "accuracy";
  EXPECT_THROW_MSG(train_mlp(other), "[trainer] " + state +
                                         " tracks the best 'loss' (lower is better) but this run "
                                         "asks for 'accuracy' (lower is better): resume with the "
                                         "same metric, or start in a new directory");
  other.metric = "loss";
  other.higher_is_better = true;
  EXPECT_THROW_MSG(train_mlp(other), "but this run asks for 'loss' (higher is better)");
  other.metric.clear();  // the checkpoint's metric
  other.higher_is_better = false;
  EXPECT_EQ(train_mlp(other).result.resumed_from, 4);
}

// A state.json that is cut short, names another step or holds a value of the wrong kind is
// refused naming the file, and the failed resume leaves every checkpoint as it was.
TEST(Trainer, ACorruptCheckpointStateIsRefusedAndLeftAlone) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("corrupt");
  train_mlp(small_options(dir, 4));
  const std::string state = dir + "/checkpoints/step-4/state.json";
  const std::string good = read_text(state);
  auto listing = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir + "/checkpoints"))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  };
  const std::vector<std::string> before = listing();
  auto resume_with = [&](const std::string& text) {
    std::ofstream(state) << text;
    try {
      train_mlp(small_options(dir, 6));
    } catch (const Error& e) {
      EXPECT_EQ(read_text(state), text);
      EXPECT_EQ(listing(), before);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  nlohmann::json edited = nlohmann::json::parse(good);
  edited["step"] = -7;
  EXPECT_EQ(resume_with(edited.dump()),
            "[trainer] " + state + " says step -7 but it is the checkpoint of step 4");
  edited["step"] = 999999;
  EXPECT_NE(resume_with(edited.dump()).find("says step 999999 but it is the checkpoint of step 4"),
            std::string::npos);
  EXPECT_NE(resume_with(good.substr(0, good.size() / 2)).find(state + " is not valid JSON"),
            std::string::npos);
  edited = nlohmann::json::parse(good);
  edited["history"] = nlohmann::json::array({{{"step", "four"}, {"metrics", {}}}});
  EXPECT_NE(resume_with(edited.dump()).find(state + " has a value of the wrong kind"),
            std::string::npos);
  std::ofstream(state) << good;
  EXPECT_EQ(train_mlp(small_options(dir, 6)).result.resumed_from, 4);
}

// Resuming with options other than the checkpoint's is allowed (a lower learning rate for
// the rest of a run) and said on the progress output.
TEST(Trainer, ResumingWithOtherOptionsSaysWhichChanged) {
  TrainerTempDir tmp;
  const std::string dir = tmp.sub("changed");
  train_mlp(small_options(dir, 4));
  TrainerOptions o = small_options(dir, 6);
  o.clip_global_norm = 1.0;
  o.progress = ProgressMode::plain;
  ::testing::internal::CaptureStderr();
  train_mlp(o);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("[trainer] resuming " + dir +
                     " at step 4 of 6 with other options: clip_global_norm 0.0 -> 1.0, schedule "
                     "linear(peak 0.05, total 4, final 0) + warmup 3 -> linear(peak 0.05, total "
                     "6, final 0) + warmup 3"),
            std::string::npos)
      << err;
}

TEST(Trainer, TimeBudgetStopsWithACheckpoint) {
  TrainerTempDir tmp;
  TrainerOptions o = small_options(tmp.sub("t"), 50);
  o.max_seconds = 1e-9;
  const MlpRun r = train_mlp(o);
  EXPECT_EQ(r.result.stop_reason, "max_seconds");
  EXPECT_EQ(r.result.steps_done, 1);
  // Evaluated at the stop, off the schedule: reported, not ranked (see the next tests).
  ASSERT_TRUE(r.result.final_eval.has_value());
  EXPECT_EQ(r.result.best_step, 0);
  EXPECT_EQ(checkpoint_dir::resume_step(o.out_dir + "/checkpoints"), 1);
  EXPECT_TRUE(fs::exists(o.out_dir + "/model/model.safetensors"));
}

// A run stopped by its time budget continues when given more time (0: no budget), as one
// stopped at its step count does when asked for more steps; the same budget trains nothing.
TEST(Trainer, TimeBudgetRunContinuesWithMoreTime) {
  TrainerTempDir tmp;
  TrainerOptions o = small_options(tmp.sub("t"), 6);
  o.max_seconds = 1e-9;
  ASSERT_EQ(train_mlp(o).result.steps_done, 1);
  const MlpRun same = train_mlp(o);
  EXPECT_EQ(same.calls, 0);
  EXPECT_EQ(same.result.stop_reason, "max_seconds");
  o.max_seconds = 0;
  const MlpRun more = train_mlp(o);
  EXPECT_EQ(more.result.resumed_from, 1);
  EXPECT_EQ(more.calls, 5);
  EXPECT_EQ(more.result.steps_done, 6);
  EXPECT_EQ(more.result.stop_reason, "steps");
}

// The evaluation at a time-budget stop off the eval schedule does not rank: counted, a good
// value there (step 1's 0.1) would be the best and run out the patience of the continued
// run two evaluations later. Split by its budget, the run stops where one that ran through
// does, with the same best.
TEST(Trainer, TimeBudgetSplitRunStopsWhereAnUninterruptedOneDoes) {
  TrainerTempDir tmp;
  auto options = [&](const std::string& name) {
    TrainerOptions o = small_options(tmp.sub(name), 40);
    o.eval_every = 2;
    o.early_stopping_patience = 2;
    o.metric = "loss";
    o.higher_is_better = false;
    return o;
  };
  const std::vector<double> evals = {3, 2, 2.5, 2.6, 2.7};
  const MlpRun straight = train_mlp(options("straight"), {.scripted_eval = evals});
  ASSERT_EQ(straight.result.stop_reason, "early_stopping");
  ASSERT_EQ(straight.result.steps_done, 8);
  ASSERT_EQ(straight.result.best_step, 4);

  TrainerOptions o = options("split");
  o.max_seconds = 1e-9;
  const MlpRun first = train_mlp(o, {.scripted_eval = {0.1}});
  ASSERT_EQ(first.result.stop_reason, "max_seconds");
  ASSERT_EQ(first.result.steps_done, 1);
  o.max_seconds = 0;
  const MlpRun rest = train_mlp(o, {.scripted_eval = evals});
  EXPECT_EQ(rest.result.resumed_from, 1);
  EXPECT_EQ(rest.result.stop_reason, "early_stopping");
  EXPECT_EQ(rest.result.steps_done, 8);
  EXPECT_EQ(rest.result.best_step, 4);
  EXPECT_EQ(rest.result.best_metric, 2.0);
}

// The ETA counts the time evaluations take, not only the training steps'.
TEST(Trainer, EtaCountsEvaluationTime) {
  struct SlowEvalJob : MlpJob {
    std::optional<EvalResult> evaluate(int64_t step) override {
      ::usleep(300'000);
      return MlpJob::evaluate(step);
    }
  } job;
  const NamedTensorList tr = job.trainable();
  optim::SGD opt(tensors_of(tr), names_of(tr));
  opt.set_schedule(optim::Schedule::constant(0.1));
  TrainerTempDir tmp;
  TrainerOptions o = small_options(tmp.sub("eta"), 3);
  o.eval_every = 1;
  o.progress = ProgressMode::plain;
  ::testing::internal::CaptureStderr();
  Trainer(o, job, opt).run();
  const std::string err = ::testing::internal::GetCapturedStderr();
  const size_t line = err.find("step 1/3 ");
  ASSERT_NE(line, std::string::npos) << err;
  const std::string first = err.substr(line, err.find('\n', line) - line);
  // Two steps left at 0.3 s of evaluation each: about a second, not "0s".
  EXPECT_EQ(first.find("ETA 0s"), std::string::npos) << first;
  EXPECT_NE(first.find("ETA "), std::string::npos) << first;
}

TEST(Trainer, PlainProgressLines) {
  TrainerTempDir tmp;
  TrainerOptions o = small_options(tmp.sub("p"), 4);
  o.log_every = 2;
  o.progress = ProgressMode::plain;
  ::testing::internal::CaptureStderr();
  train_mlp(o);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("step 2/4  loss "), std::string::npos) << err;
  EXPECT_NE(err.find("step 4/4  loss "), std::string::npos) << err;
  EXPECT_EQ(err.find("step 3/4"), std::string::npos) << err;
  EXPECT_NE(err.find("ex/s"), std::string::npos) << err;
  EXPECT_EQ(err.find('\r'), std::string::npos) << err;
}

TEST(Trainer, LiveProgressLine) {
  TrainerTempDir tmp;
  TrainerOptions o = small_options(tmp.sub("p"), 4);
  o.progress = ProgressMode::live;
  ::testing::internal::CaptureStderr();
  train_mlp(o);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("\rstep 4/4  loss "), std::string::npos) << err;
  EXPECT_NE(err.find("\neval step 4: accuracy "), std::string::npos) << err;
  EXPECT_EQ(err.back(), '\n');
}

TEST(Trainer, RejectsBadSetups) {
  TrainerTempDir tmp;
  MlpJob job;
  const NamedTensorList tr = job.trainable();
  optim::SGD no_schedule(tensors_of(tr), names_of(tr));
  EXPECT_THROW_MSG(Trainer(small_options(tmp.path, 2), job, no_schedule), "has no schedule");
  NamedTensorList reversed(tr.rbegin(), tr.rend());
  optim::SGD wrong_order(tensors_of(reversed), names_of(reversed));
  wrong_order.set_schedule(optim::Schedule::constant(0.1));
  EXPECT_THROW_MSG(Trainer(small_options(tmp.path, 2), job, wrong_order),
                   "entry 0 ('l1.weight') is not the optimizer's parameter 0 ('l2.bias')");
  optim::SGD ok(tensors_of(tr), names_of(tr));
  ok.set_schedule(optim::Schedule::constant(0.1));
  TrainerOptions o = small_options(tmp.path, 2);
  o.early_stopping_patience = 3;
  EXPECT_THROW_MSG(Trainer(o, job, ok), "needs options.eval_every > 0");
  o = small_options("", 2);
  EXPECT_THROW_MSG(Trainer(o, job, ok), "options.out_dir is empty");
  struct TiedJob : MlpJob {
    NamedTensorList trainable() override {
      NamedTensorList t = MlpJob::trainable();
      t.emplace_back("alias", t[0].second);
      return t;
    }
  } tied;
  const NamedTensorList tt = tied.trainable();
  optim::SGD tied_opt(tensors_of(tt), names_of(tt));
  tied_opt.set_schedule(optim::Schedule::constant(0.1));
  EXPECT_THROW_MSG(Trainer(small_options(tmp.path, 2), tied, tied_opt),
                   "entries 'l1.weight' and 'alias' share storage");
}

// --- the pieces --------------------------------------------------------------------------

TEST(TrainerMetricsLog, ResumeDropsLinesPastTheCheckpointAndTornLines) {
  TrainerTempDir tmp;
  const std::string path = tmp.sub("metrics.jsonl");
  std::ofstream(path)
      << "{\"step\":1}\n{\"step\":2,\"eval\":{}}\n{\"step\":3}\n{\"step\":4}\n{\"st";
  MetricsLog log;
  log.open(path, 2);
  log.append({{"step", 3}, {"loss", 0.5}});
  log.close();
  const auto lines = read_metrics(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2], (json{{"step", 3}, {"loss", 0.5}}));
  log.open(path, 0);
  log.close();
  EXPECT_TRUE(read_metrics(path).empty());
}

TEST(TrainerCheckpointDir, NamesAndTheResumePoint) {
  EXPECT_EQ(checkpoint_dir::name(12), "step-12");
  EXPECT_EQ(checkpoint_dir::parse_name("step-12"), 12);
  EXPECT_EQ(checkpoint_dir::parse_name("step-012"), std::nullopt);
  EXPECT_EQ(checkpoint_dir::parse_name("step-"), std::nullopt);
  EXPECT_EQ(checkpoint_dir::parse_name(".tmp-step-3-99"), std::nullopt);
  TrainerTempDir tmp;
  EXPECT_EQ(checkpoint_dir::resume_step(tmp.path), std::nullopt);
  for (int s : {3, 6, 9}) fs::create_directories(tmp.sub("step-" + std::to_string(s)));
  for (int s : {3, 6}) std::ofstream(tmp.sub("step-" + std::to_string(s) + "/state.json")) << "{}";
  // No pointer: the newest complete directory (step-9 has no state.json).
  EXPECT_EQ(checkpoint_dir::resume_step(tmp.path), 6);
  checkpoint_dir::write_latest(tmp.path, 3);
  EXPECT_EQ(checkpoint_dir::resume_step(tmp.path), 3);
  EXPECT_EQ(checkpoint_dir::list_steps(tmp.path), (std::vector<int64_t>{3, 6, 9}));
}

// A committed directory replaces the old one whole, and neither the new one's temporary
// name nor the old directory stays behind; a first commit is a plain rename.
TEST(TrainerCheckpointDir, CommitSwapsInTheNewDirectoryAndRemovesTheOld) {
  TrainerTempDir tmp;
  const std::string final_path = tmp.sub("model");
  for (const char* content : {"first", "second"}) {
    const std::string staged = checkpoint_dir::make_temporary(tmp.path, "model", "[test]");
    std::ofstream(fs::path(staged) / "weights") << content;
    if (std::string(content) == "first") std::ofstream(fs::path(staged) / "only-first") << "x";
    checkpoint_dir::commit_directory(staged, final_path, "[test]");
    std::ifstream in(fs::path(final_path) / "weights");
    std::string got;
    in >> got;
    EXPECT_EQ(got, content);
    EXPECT_FALSE(fs::exists(staged));
  }
  EXPECT_FALSE(fs::exists(fs::path(final_path) / "only-first"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(tmp.path)) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"model"});
  EXPECT_THROW_MSG(checkpoint_dir::commit_directory(tmp.sub("missing"), final_path, "[test]"),
                   "[test] cannot swap");
}

TEST(TrainerDtypePolicy, FrozenToBf16TrainableStaysF32) {
  struct Two : Module {
    Linear frozen{4, 4}, tuned{4, 2};
    Two() {
      register_module("frozen", &frozen);
      register_module("tuned", &tuned);
    }
  } m;
  init::constant_(m.frozen.weight, 0.5);
  m.frozen.requires_grad_(false);
  EXPECT_EQ(cast_frozen_parameters(m), 2);  // frozen.weight and frozen.bias
  EXPECT_EQ(m.frozen.weight.dtype(), DType::bf16);
  EXPECT_FALSE(m.frozen.weight.requires_grad());
  EXPECT_EQ(m.frozen.weight.to_vector<float>()[0], 0.5f);
  EXPECT_EQ(m.tuned.weight.dtype(), DType::f32);
  EXPECT_TRUE(m.tuned.weight.requires_grad());
  EXPECT_EQ(m.named_parameters()[0].second.dtype(), DType::bf16);  // the module sees the cast
  EXPECT_EQ(cast_frozen_parameters(m), 0);
  EXPECT_THROW_MSG(cast_frozen_parameters(m, DType::i32), "dtypes must be floating");
}

}  // namespace
}  // namespace sp
