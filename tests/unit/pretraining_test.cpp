// Pretraining and LM adaptation end to end on a tiny corpus (experiments/data/pretraining.h).
#include "experiments/data/pretraining.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "experiments/data/corpus_builder.h"
#include "experiments/objectives/span_corruption.h"
#include "experiments/training/optimizer_factory.h"
#include "models/t5/checkpoint.h"
#include "nn/optim/adafactor.h"
#include "temp_dir.h"
#include "test_util.h"

namespace sp {
namespace {
namespace fs = std::filesystem;

// A corpus of short, highly regular sentences (a model can learn them in a few steps).
std::string make_corpus(const TempDir& dir) {
  const char* animals[] = {"cat", "dog", "bird", "fish", "horse", "mouse"};
  const char* verbs[] = {"eats", "sees", "likes", "chases"};
  const char* things[] = {"bread", "grass", "water", "seeds", "apples"};
  const std::string text = (dir.path / "text.txt").string();
  std::ofstream f(text);
  for (int i = 0; i < 300; ++i) {
    f << "the " << animals[i % 6] << " " << verbs[(i / 6) % 4] << " the " << things[(i / 24) % 5]
      << " and the " << animals[(i + 1) % 6] << " " << verbs[(i / 3) % 4] << " "
      << things[(i / 2) % 5] << " number " << i % 37 << "\n";
  }
  f.close();
  CorpusBuildOptions o;
  o.use_wordnet = false;
  o.text_files = {text};
  o.out_dir = (dir.path / "corpus").string();
  o.validation_fraction = 0.1;
  o.vocab_size = 60;
  o.vocab_threads = 1;
  build_corpus(o);
  return o.out_dir;
}

// One corpus for the whole suite (building it trains a vocabulary); removed at exit.
const std::string& shared_corpus() {
  static const TempDir dir;
  static const std::string data = make_corpus(dir);
  return data;
}

PretrainOptions tiny_options(const std::string& data, const std::string& out) {
  PretrainOptions o;
  o.data_dir = data;
  o.out_dir = out;
  o.preset = "t5-tiny";
  o.steps = 20;
  o.batch_size = 4;
  o.inputs_length = 32;
  o.eval_every = 10;
  o.eval_examples = 8;
  o.log_every = 5;
  o.optimizer.schedule.kind = "constant";
  o.optimizer.lr = 1e-2;
  o.progress = ProgressMode::off;
  o.verbose = false;
  return o;
}

TEST(Pretraining, span_corruption_then_lm_adapt_lower_the_loss) {
  TempDir dir;
  const std::string& data = shared_corpus();
  const PretrainOptions o = tiny_options(data, (dir.path / "pt").string());
  const PretrainResult r = run_pretraining(o);
  EXPECT_EQ(r.train.steps_done, 20);
  ASSERT_EQ(r.validation_loss.size(), 2u);
  EXPECT_LT(r.validation_loss.back().second, r.initial_loss - 1.0);
  EXPECT_GT(r.unigram_baseline, 0);
  EXPECT_GT(r.tokens_per_second, 0);
  EXPECT_EQ(r.vocab_size % 128, 0);

  // A Hugging Face checkpoint with the tokenizer beside it.
  ASSERT_TRUE(fs::exists(fs::path(r.model_dir) / "spiece.model"));
  auto model = load_t5(r.model_dir);
  EXPECT_EQ(model->config().d_model, 64);
  EXPECT_EQ(model->config().vocab_size, r.vocab_size);
  const nlohmann::json summary =
      nlohmann::json::parse(std::ifstream(fs::path(o.out_dir) / "pretrain.json"));
  EXPECT_EQ(summary["options"]["objective"], "span_corruption");
  EXPECT_DOUBLE_EQ(summary["unigram_baseline"].get<double>(), r.unigram_baseline);

  // LM adaptation continues the checkpoint with prefix LM.
  PretrainOptions a = tiny_options(data, (dir.path / "lm").string());
  a.objective = PretrainObjective::prefix_lm;
  a.init_checkpoint = r.model_dir;
  a.steps = 10;
  const PretrainResult adapted = run_pretraining(a);
  EXPECT_EQ(adapted.train.steps_done, 10);
  EXPECT_LT(adapted.validation_loss.back().second, adapted.initial_loss);
  EXPECT_TRUE(fs::exists(fs::path(adapted.model_dir) / "model.safetensors"));
}

TEST(Pretraining, stopping_and_resuming_matches_an_uninterrupted_run) {
  TempDir dir;
  const std::string& data = shared_corpus();
  PretrainOptions whole = tiny_options(data, (dir.path / "whole").string());
  whole.objective = PretrainObjective::prefix_lm;  // packs several examples per row
  whole.steps = 8;
  whole.eval_every = 4;
  whole.dropout = 0.1;  // the dropout generator is restored too
  const PretrainResult a = run_pretraining(whole);

  PretrainOptions parts = whole;
  parts.out_dir = (dir.path / "parts").string();
  parts.steps = 5;
  run_pretraining(parts);
  parts.steps = 8;
  const PretrainResult b = run_pretraining(parts);
  EXPECT_EQ(b.train.resumed_from, 5);
  // The split run also evaluated where its first part ended (step 5); the evaluations at
  // the uninterrupted run's steps must agree exactly.
  ASSERT_EQ(a.validation_loss.size(), 2u);
  ASSERT_EQ(b.validation_loss.size(), 3u);
  EXPECT_EQ(b.validation_loss[0], a.validation_loss[0]);
  EXPECT_EQ(b.validation_loss[2], a.validation_loss[1]);
  EXPECT_EQ(a.train.final_loss, b.train.final_loss);
  EXPECT_EQ(a.initial_loss, b.initial_loss);
}

// The token cache beside the corpus (data/tokens) changes the time, not the numbers: runs
// that map cached ids train as one that tokenized the text itself.
TEST(Pretraining, runs_on_cached_token_ids_train_as_one_that_tokenized) {
  TempDir dir;
  const std::string& data = shared_corpus();
  PretrainOptions plain = tiny_options(data, (dir.path / "plain").string());
  plain.steps = 4;
  plain.eval_every = 2;
  plain.cache_tokens = false;
  const PretrainResult a = run_pretraining(plain);
  for (const char* out : {"first", "second"}) {  // makes the cache (or finds it), reads it
    PretrainOptions cached = plain;
    cached.out_dir = (dir.path / out).string();
    cached.cache_tokens = true;
    const PretrainResult b = run_pretraining(cached);
    EXPECT_EQ(b.validation_loss, a.validation_loss) << out;
    EXPECT_EQ(b.train.final_loss, a.train.final_loss) << out;
    EXPECT_EQ(b.initial_loss, a.initial_loss) << out;
  }
  int cache_files = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(data) / "tokens"))
    cache_files += entry.path().extension() == ".tokens";
  EXPECT_EQ(cache_files, 2);  // train and validation
}

TEST(Pretraining, z_loss_adds_to_the_training_loss_only) {
  TempDir dir;
  const std::string& data = shared_corpus();
  PretrainOptions plain = tiny_options(data, (dir.path / "plain").string());
  plain.steps = 1;
  plain.eval_every = 1;
  PretrainOptions z = plain;
  z.out_dir = (dir.path / "z").string();
  z.z_loss = 0.5;  // large, so log(Z)^2 of the untrained model shows in the first step
  const PretrainResult a = run_pretraining(plain);
  const PretrainResult b = run_pretraining(z);
  // Step 1 sees the same batch from the same initial model: the training loss differs by
  // the z term, the validation loss before training does not.
  EXPECT_EQ(a.initial_loss, b.initial_loss);
  EXPECT_GT(b.train.final_loss, a.train.final_loss + 1e-3);
  // The train line splits the loss into its parts; the cross-entropy is the plain run's.
  const auto first_line = [](const fs::path& out) {
    std::ifstream in(out / "metrics.jsonl");
    std::string line;
    std::getline(in, line);
    return nlohmann::json::parse(line);
  };
  const nlohmann::json pa = first_line(dir.path / "plain"), pb = first_line(dir.path / "z");
  EXPECT_FALSE(pa.contains("z_loss"));
  EXPECT_FALSE(pa.contains("cross_entropy"));
  ASSERT_TRUE(pb.contains("z_loss")) << pb.dump();
  EXPECT_GT(pb["z_loss"].get<double>(), 1e-3);
  EXPECT_NEAR(pb["cross_entropy"].get<double>() + pb["z_loss"].get<double>(),
              pb["loss"].get<double>(), 1e-6);
  EXPECT_NEAR(pb["cross_entropy"].get<double>(), pa["loss"].get<double>(), 1e-5);
}

// A corpus file is often sorted (WordNet's by part of speech): the validation examples
// sample the whole split, the same ones for every seed.
TEST(Pretraining, validation_examples_sample_the_whole_split) {
  auto docs = std::make_shared<TokenizedDocuments>();
  for (int i = 0; i < 200; ++i) docs->add(std::vector<int32_t>(30, i < 100 ? 10 : 20));
  SpecialTokens vocab;
  vocab.spm_size = 1000;
  for (PretrainObjective objective :
       {PretrainObjective::span_corruption, PretrainObjective::prefix_lm}) {
    SCOPED_TRACE(objective_name(objective));
    PretrainOptions o;
    o.objective = objective;
    o.inputs_length = 16;
    o.eval_examples = 32;
    const std::vector<Seq2SeqExample> val = pretraining_validation_examples(o, docs, vocab);
    ASSERT_EQ(val.size(), 32u);
    std::set<int32_t> seen;
    for (const Seq2SeqExample& ex : val)
      for (const std::vector<int32_t>* side : {&ex.inputs, &ex.targets})
        for (int32_t t : *side)
          if (t == 10 || t == 20) seen.insert(t);
    EXPECT_EQ(seen, (std::set<int32_t>{10, 20})) << "both halves of the split";
    o.seed = 7;  // the training seed does not move them
    const std::vector<Seq2SeqExample> again = pretraining_validation_examples(o, docs, vocab);
    ASSERT_EQ(again.size(), val.size());
    for (size_t i = 0; i < val.size(); ++i) EXPECT_EQ(again[i].inputs, val[i].inputs);
  }
}

TEST(Pretraining, noise_settings_reach_the_span_corruption_stream) {
  TempDir dir;
  const std::string& data = shared_corpus();
  PretrainOptions a = tiny_options(data, (dir.path / "a").string());
  a.steps = 1;
  a.eval_every = 1;
  PretrainOptions b = a;
  b.out_dir = (dir.path / "b").string();
  b.noise_density = 0.5;
  b.mean_noise_span_length = 2.0;
  // Other noise makes other validation examples, so the loss before training differs.
  EXPECT_NE(run_pretraining(a).initial_loss, run_pretraining(b).initial_loss);
}

// Training examples are shuffled in blocks (shuffle_buffer); the validation ones are not.
TEST(Pretraining, shuffle_buffer_reorders_the_training_examples_only) {
  TempDir dir;
  PretrainOptions shuffled = tiny_options(shared_corpus(), (dir.path / "shuffled").string());
  shuffled.steps = 1;
  shuffled.eval_every = 1;
  PretrainOptions in_order = shuffled;
  in_order.out_dir = (dir.path / "in_order").string();
  in_order.shuffle_buffer = 0;
  const PretrainResult a = run_pretraining(shuffled);
  const PretrainResult b = run_pretraining(in_order);
  EXPECT_EQ(a.initial_loss, b.initial_loss);
  EXPECT_NE(a.train.final_loss, b.train.final_loss);  // step 1 saw other examples
  const nlohmann::json summary =
      nlohmann::json::parse(std::ifstream(dir.path / "shuffled" / "pretrain.json"));
  EXPECT_EQ(summary["options"]["shuffle_buffer"].get<int64_t>(), 1000);
  // A rerun resumes the saved stream, which must be shuffled the same way.
  in_order.steps = 2;
  in_order.shuffle_buffer = 4;
  EXPECT_THROW_MSG(run_pretraining(in_order), "does not shuffle its examples; this one shuffles");
  for (int64_t bad : {-1, 1, 100001}) {
    in_order.shuffle_buffer = bad;
    EXPECT_THROW_MSG(run_pretraining(in_order),
                     "[pretrain] shuffle_buffer must be 0 (no shuffling) or 2 to 100000 examples, "
                     "got " +
                         std::to_string(bad));
  }
}

// A rerun in the same out_dir resumes its data stream; with another inputs_length the
// saved position belongs to other pieces, and the run says so instead of going on.
TEST(Pretraining, resuming_with_other_data_settings_is_refused) {
  TempDir dir;
  PretrainOptions o = tiny_options(shared_corpus(), (dir.path / "run").string());
  o.steps = 2;
  o.eval_every = 1;
  run_pretraining(o);
  o.steps = 4;
  o.inputs_length = 24;
  EXPECT_THROW_MSG(run_pretraining(o),
                   "the state is for inputs_length 32, this stream has inputs_length 24");
}

// Another validation set (eval_examples here) is refused on resume: the checkpoint's losses
// were of the first set. A new run in the directory recomputes the baseline for its set.
TEST(Pretraining, resuming_with_another_validation_set_is_refused) {
  TempDir dir;
  PretrainOptions o = tiny_options(shared_corpus(), (dir.path / "run").string());
  o.steps = 2;
  o.eval_every = 1;
  run_pretraining(o);
  auto baseline = [&] {
    std::ifstream f(dir.path / "run" / "baseline.json");
    return nlohmann::json::parse(f);
  };
  EXPECT_EQ(baseline()["validation_examples"].get<int64_t>(), 8);
  o.steps = 4;
  o.eval_examples = 4;
  EXPECT_THROW_MSG(run_pretraining(o), "but this run evaluates {\"examples\":4,\"sha256\":");
  std::filesystem::remove_all(dir.path / "run" / "checkpoints");
  std::filesystem::remove(dir.path / "run" / "metrics.jsonl");
  run_pretraining(o);
  EXPECT_EQ(baseline()["validation_examples"].get<int64_t>(), 4);
  EXPECT_EQ(baseline()["validation"]["examples"].get<int64_t>(), 4);
}

// A targets_length below what span corruption makes would cut every long target (packing
// truncates): refused, as T5's span_corruption does. The default records what it used.
TEST(Pretraining, a_targets_length_that_would_cut_span_corruption_targets_is_refused) {
  TempDir dir;
  PretrainOptions o = tiny_options(shared_corpus(), (dir.path / "run").string());
  const int64_t needed = span_corruption_lengths(32, 0.15, 3.0).targets_length;
  o.targets_length = needed - 1;
  EXPECT_THROW_MSG(run_pretraining(o), "[pretrain] targets_length " + std::to_string(needed - 1) +
                                           " is below the " + std::to_string(needed) +
                                           " tokens span_corruption makes from inputs_length 32");
  o.targets_length = -1;
  EXPECT_THROW_MSG(run_pretraining(o), "[pretrain] targets_length must be 0 (the objective's) or");
  o.targets_length = 0;
  o.steps = 1;
  o.eval_every = 1;
  run_pretraining(o);
  std::ifstream f(dir.path / "run" / "pretrain.json");
  const nlohmann::json j = nlohmann::json::parse(f);
  EXPECT_EQ(j["options"]["targets_length"].get<int64_t>(), needed);
  EXPECT_EQ(j["options"]["noise_density"].get<double>(), 0.15);
}

TEST(Pretraining, default_optimizer_is_t5x_pretraining_adafactor) {
  Tensor w = Tensor::zeros({4, 4});
  w.requires_grad_(true);
  auto opt = make_optimizer(PretrainOptions().optimizer, {{"w", w}}, 100);
  auto* adafactor = dynamic_cast<optim::Adafactor*>(opt.get());
  ASSERT_NE(adafactor, nullptr);
  EXPECT_TRUE(adafactor->options().multiply_by_parameter_scale);
  EXPECT_TRUE(adafactor->options().factored);
  EXPECT_FALSE(adafactor->options().weight_decay_rate.has_value());
  EXPECT_DOUBLE_EQ(adafactor->options().decay_rate, 0.8);
  ASSERT_TRUE(opt->schedule().has_value());
  EXPECT_DOUBLE_EQ(opt->schedule()->lr(1), 0.01);       // 1 / sqrt(1e4)
  EXPECT_DOUBLE_EQ(opt->schedule()->lr(40000), 0.005);  // 1 / sqrt(4e4)
}

TEST(Pretraining, runs_with_the_optimizer_it_is_given) {
  TempDir dir;
  PretrainOptions o = tiny_options(shared_corpus(), (dir.path / "pt").string());
  o.steps = 2;
  o.optimizer.name = "adamw";
  o.optimizer.weight_decay = 0.1;
  o.optimizer.schedule.kind = "linear";
  const PretrainResult r = run_pretraining(o);
  // The trainer's checkpoint says what it trained with.
  const nlohmann::json state =
      nlohmann::json::parse(std::ifstream(fs::path(r.train.last_checkpoint) / "state.json"));
  EXPECT_EQ(state["options"]["optimizer"], "adamw");
  EXPECT_EQ(state["options"]["schedule"], "linear(peak 0.01, total 2, final 0)");
  const nlohmann::json summary =
      nlohmann::json::parse(std::ifstream(fs::path(o.out_dir) / "pretrain.json"));
  EXPECT_EQ(summary["options"]["optimizer"], o.optimizer.canonical_json());
  EXPECT_EQ(summary["options"]["optimizer"]["name"], "adamw");
  EXPECT_DOUBLE_EQ(summary["options"]["optimizer"]["weight_decay"].get<double>(), 0.1);
}

TEST(Pretraining, lm_adaptation_trains_with_the_dropout_it_is_given) {
  TempDir dir;
  PretrainOptions o = tiny_options(shared_corpus(), (dir.path / "pt").string());
  o.steps = 2;
  o.dropout = 0.3;  // the checkpoint's config says 0.3, as hub configs say 0.1
  const PretrainResult base = run_pretraining(o);
  ASSERT_DOUBLE_EQ(load_t5(base.model_dir)->config().dropout_rate, 0.3);
  PretrainOptions a = tiny_options(shared_corpus(), (dir.path / "lm").string());
  a.objective = PretrainObjective::prefix_lm;
  a.init_checkpoint = base.model_dir;
  a.steps = 2;
  a.dropout = 0.0;
  const PretrainResult adapted = run_pretraining(a);
  EXPECT_DOUBLE_EQ(load_t5(adapted.model_dir)->config().dropout_rate, 0.0);
}

TEST(Pretraining, clear_errors) {
  TempDir dir;
  PretrainOptions o = tiny_options((dir.path / "nothing").string(), (dir.path / "out").string());
  EXPECT_THROW_MSG(run_pretraining(o), "is not a built corpus");
  o.data_dir = shared_corpus();
  o.optimizer.name = "lamb";
  EXPECT_THROW_MSG(run_pretraining(o), "[optimizer] unknown optimizer 'lamb'");
  o.optimizer.name = "adafactor";
  o.preset = "t5-enormous";
  EXPECT_THROW_MSG(run_pretraining(o), "unknown preset \"t5-enormous\"");
  EXPECT_THROW_MSG(objective_from_name("mlm"), "expected span_corruption or prefix_lm");
}

}  // namespace
}  // namespace sp
