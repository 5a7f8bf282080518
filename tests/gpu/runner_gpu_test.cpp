// The experiment runner on a CUDA device against the same micro spec on the CPU: a corpus
// and an RTE-format task the test writes, the fixture tokenizer, a tiny T5 pretrained,
// LM-adapted, prompt-tuned (dropout on, rank classification while tuning) and evaluated
// by greedy decoding, each prompt alone and as an ensemble of two. The stage hash leaves the device
// out, so each device runs in its own output folder; every stage's losses and the final
// accuracy must agree.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/data/corpus_builder.h"
#include "experiments/data/pretraining.h"
#include "experiments/report/results.h"
#include "experiments/runner/runner.h"
#include "experiments/spec/spec.h"
#include "gpu_test_util.h"
#include "temp_dir.h"
#include "tensor/allocator.h"

namespace sp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Sentences from a small seeded grammar: enough text for span corruption and a prefix LM.
void write_corpus(const fs::path& file) {
  const std::vector<std::string> subjects = {"The cat",       "A farmer",       "The old river",
                                             "My sister",     "The small boat", "A teacher",
                                             "The north wind"};
  const std::vector<std::string> verbs = {"watched", "carried", "followed",  "painted",
                                          "found",   "crossed", "remembered"};
  const std::vector<std::string> objects = {"the hill",     "a red kite",    "the quiet town",
                                            "three apples", "the long road", "an open door"};
  std::ofstream out(file);
  uint64_t s = 12345;
  auto pick = [&s](size_t n) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<size_t>((s >> 33) % n);
  };
  for (int line = 0; line < 400; ++line) {
    out << subjects[pick(subjects.size())] << ' ' << verbs[pick(verbs.size())] << ' '
        << objects[pick(objects.size())] << " and then " << verbs[pick(verbs.size())] << ' '
        << objects[pick(objects.size())] << ".\n";
  }
}

// RTE's jsonl layout: a hypothesis that repeats the premise's subject is entailed.
void write_rte(const fs::path& dir) {
  fs::create_directories(dir);
  const std::vector<std::string> names = {"Anna", "Boris", "Chen", "Dara", "Emil", "Farah"};
  const std::vector<std::string> acts = {"walked home", "sang a song", "read a book",
                                         "baked bread"};
  for (const auto& [split, n] : {std::pair<std::string, int>{"train", 48}, {"val", 24}}) {
    std::ofstream out(dir / (split + ".jsonl"));
    for (int i = 0; i < n; ++i) {
      const std::string& who = names[i % names.size()];
      const std::string& other = names[(i + 1 + i / 6) % names.size()];
      const std::string& act = acts[(i / 2) % acts.size()];
      const bool entailed = i % 2 == 0;
      out << json{{"premise", who + " " + act + " yesterday."},
                  {"hypothesis", (entailed ? who : other) + " " + act + "."},
                  {"label", entailed ? "entailment" : "not_entailment"},
                  {"idx", i}}
                 .dump()
          << '\n';
    }
  }
}

std::string micro_spec(const fs::path& dir, const std::string& device) {
  std::ostringstream s;
  s << "name: micro_" << device << R"(
model:
  preset: t5-tiny
  device: )"
    << device << R"(
tokenizer:
  source: file
  path: )"
    << SP_FIXTURES_DIR << R"(/tokenizer/spiece.model
corpus:
  files: [)"
    << (dir / "corpus.txt").string() << R"(]
stages:
  pretrain:
    steps: 12
    batch_size: 8
    inputs_length: 32
  lm_adapt:
    steps: 6
    batch_size: 8
    inputs_length: 32
  tune:
    task: rte
    data_dir: )"
    << (dir / "rte").string() << R"(
    peft:
      method: prompt_tuning
      length: 4
      init: class_labels
    steps: 10
    batch_size: 8
    inputs_length: 32
    targets_length: 4
    eval_every: 10
    eval_method: rank_classification
  eval:
    splits: [validation]
    method: greedy
    ensemble: 2
)";
  return s.str();
}

fs::path stage_dir(const fs::path& run, const std::string& stage) {
  for (const auto& e : fs::directory_iterator(run / "stages"))
    if (e.path().filename().string().starts_with(stage + "-")) return e.path();
  ADD_FAILURE() << "no " << stage << " stage under " << run;
  return {};
}

json read_json(const fs::path& file) {
  std::ifstream in(file);
  EXPECT_TRUE(in.good()) << file;
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

// The training losses a stage logged, in step order.
std::vector<double> logged_losses(const fs::path& stage) {
  std::vector<double> losses;
  std::ifstream in(stage / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("loss")) losses.push_back(j["loss"].get<double>());
  }
  return losses;
}

void expect_close(double gpu, double cpu, double rel, const std::string& what) {
  EXPECT_NEAR(gpu, cpu, rel * std::max(1.0, std::abs(cpu))) << what;
}

TEST(RunnerGpu, MicroSpecOnCudaMatchesTheCpuRun) {
  SP_REQUIRE_CUDA();
  TempDir tmp;
  write_corpus(tmp.path / "corpus.txt");
  write_rte(tmp.path / "rte");

  auto run_on = [&](const std::string& device, const std::string& folder) {
    const ExperimentSpec spec =
        parse_spec(micro_spec(tmp.path, device), (tmp.path / (folder + ".yaml")).string());
    RunOptions o;
    o.out_dir = (tmp.path / folder).string();
    std::ostringstream log;
    o.log = &log;
    EXPECT_EQ(run_experiment(spec, o), 0) << log.str();
    return tmp.path / folder;
  };
  const fs::path cpu = run_on("cpu", "cpu_run");
  const fs::path gpu = run_on("cuda", "cuda_run");

  for (const std::string stage : {"pretrain", "lm_adapt"}) {
    const json c = read_json(stage_dir(cpu, stage) / "pretrain.json");
    const json g = read_json(stage_dir(gpu, stage) / "pretrain.json");
    for (const char* key : {"initial_validation_loss", "final_train_loss"}) {
      ASSERT_TRUE(c.contains(key) && g.contains(key)) << stage << " " << key;
      expect_close(g[key].get<double>(), c[key].get<double>(), 2e-3, stage + " " + key);
    }
    EXPECT_EQ(g["steps_done"], c["steps_done"]) << stage;
    const json& cv = c["validation_loss"];  // [{step, loss}, ...]
    ASSERT_FALSE(cv.empty()) << stage;
    ASSERT_EQ(g["validation_loss"].size(), cv.size()) << stage;
    for (size_t i = 0; i < cv.size(); ++i)
      expect_close(g["validation_loss"][i]["loss"].get<double>(), cv[i]["loss"].get<double>(), 2e-3,
                   stage + " validation loss at step " + cv[i]["step"].dump());
  }

  const std::vector<double> c_losses = logged_losses(stage_dir(cpu, "tune"));
  const std::vector<double> g_losses = logged_losses(stage_dir(gpu, "tune"));
  ASSERT_FALSE(c_losses.empty());
  ASSERT_EQ(g_losses.size(), c_losses.size());
  for (size_t i = 0; i < c_losses.size(); ++i)
    expect_close(g_losses[i], c_losses[i], 2e-3, "tune loss #" + std::to_string(i));

  const auto c_results = read_results((cpu / "results.jsonl").string());
  const auto g_results = read_results((gpu / "results.jsonl").string());
  ASSERT_EQ(g_results.size(), c_results.size());
  ASSERT_FALSE(c_results.empty());
  EXPECT_TRUE(g_results.back().metrics.count("members_mean_accuracy"))  // the ensemble ran
      << to_json(g_results.back()).dump();
  for (size_t i = 0; i < c_results.size(); ++i) {
    ASSERT_TRUE(c_results[i].metrics.count("accuracy") && g_results[i].metrics.count("accuracy"));
    // 24 validation examples: a near-tie may rank the other way, one example at most.
    EXPECT_LE(std::abs(g_results[i].metrics.at("accuracy") - c_results[i].metrics.at("accuracy")),
              100.0 / 24 + 1e-9)
        << c_results[i].stage;
  }
}

// softprompt pretrain / lm-adapt and the runner's pretraining stages train on the device
// they are given: the CUDA allocator holds the model, and the losses are the CPU's.
TEST(PretrainGpu, PretrainingRunsOnTheDeviceLikeTheCpu) {
  SP_REQUIRE_CUDA();
  TempDir tmp;
  write_corpus(tmp.path / "corpus.txt");
  CorpusBuildOptions c;
  c.out_dir = (tmp.path / "corpus").string();
  c.use_wordnet = false;
  c.text_files = {(tmp.path / "corpus.txt").string()};
  c.vocab_size = 100;
  c.vocab_threads = 1;
  c.verbose = false;
  build_corpus(c);

  auto run_on = [&](Device device, const std::string& folder) {
    PretrainOptions o;
    o.data_dir = c.out_dir;
    o.out_dir = (tmp.path / folder).string();
    o.device = device;
    o.steps = 6;
    o.batch_size = 4;
    o.inputs_length = 32;
    o.eval_every = 3;
    o.eval_examples = 8;
    o.optimizer.schedule.kind = "constant";
    o.optimizer.lr = 1e-2;
    o.progress = ProgressMode::off;
    o.verbose = false;
    return run_pretraining(o);
  };
  const PretrainResult cpu = run_on(Device::cpu(), "cpu");
  Allocator& gpu_memory = allocator_for(Device::cuda(0));
  gpu_memory.reset_peak();
  const int64_t before = gpu_memory.stats().peak_bytes;
  const PretrainResult gpu = run_on(Device::cuda(0), "cuda");
  // At least the f32 parameters lived on the device.
  EXPECT_GE(gpu_memory.stats().peak_bytes - before, 4 * gpu.parameters);
  expect_close(gpu.initial_loss, cpu.initial_loss, 2e-3, "initial validation loss");
  ASSERT_EQ(gpu.validation_loss.size(), cpu.validation_loss.size());
  for (size_t i = 0; i < cpu.validation_loss.size(); ++i)
    expect_close(gpu.validation_loss[i].second, cpu.validation_loss[i].second, 2e-3,
                 "validation loss at step " + std::to_string(cpu.validation_loss[i].first));
  const json summary = read_json(tmp.path / "cuda" / "pretrain.json");
  EXPECT_EQ(summary["options"]["device"], "cuda:0");
}

}  // namespace
}  // namespace sp
