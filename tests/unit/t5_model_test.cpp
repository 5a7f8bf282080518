// T5 model structure, names, checkpoint round trip, KV-cache decoding, scoring.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "models/io/safetensors.h"
#include "models/t5/checkpoint.h"
#include "models/t5/generation.h"
#include "test_util.h"
#include "tiny_t5.h"

namespace sp {
namespace {

// Three decoder layers, so decoder-only code paths differ from the encoder's.
T5Config tiny_decoder3(bool gated = false) {
  T5Config c = tiny_t5_config(gated);
  c.num_decoder_layers = 3;
  return c;
}

std::string temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() /
           ("sp_t5_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

TEST(T5Model, hugging_face_names) {
  T5ForConditionalGeneration m(tiny_decoder3(true));
  NamedTensors p = m.named_parameters();
  std::vector<std::string> names;
  for (auto& [n, t] : p) names.push_back(n);
  auto has = [&](const std::string& n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  EXPECT_EQ(names.front(), "shared.weight");
  EXPECT_EQ(names.back(), "lm_head.weight");
  EXPECT_TRUE(has("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"));
  EXPECT_FALSE(has("encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"));
  EXPECT_TRUE(has("encoder.block.1.layer.1.DenseReluDense.wi_0.weight"));
  EXPECT_TRUE(has("decoder.block.2.layer.1.EncDecAttention.o.weight"));
  EXPECT_TRUE(has("decoder.block.2.layer.2.DenseReluDense.wo.weight"));
  EXPECT_TRUE(has("decoder.block.2.layer.2.layer_norm.weight"));
  EXPECT_TRUE(has("decoder.final_layer_norm.weight"));
  EXPECT_EQ(m.find_parameter("encoder.block.0.layer.0.SelfAttention.q.weight")->shape(),
            (Shape{12, 16}));
  EXPECT_EQ(m.find_parameter("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
                ->shape(),
            (Shape{8, 2}));
  T5ForConditionalGeneration tied(tiny_decoder3(false));
  EXPECT_EQ(tied.find_parameter("lm_head.weight"), nullptr);
  EXPECT_NE(tied.find_parameter("encoder.block.1.layer.1.DenseReluDense.wi.weight"), nullptr);
}

TEST(T5Model, parameter_counts_of_the_presets) {
  // transformers reports 60,506,624 for t5-small and 76,961,152 for t5-v1_1-small.
  // (Building them would zero 300 MB; the formula is checked against built tiny models.)
  EXPECT_EQ(T5ForConditionalGeneration::count_parameters(T5Config::preset("t5-small")), 60506624);
  EXPECT_EQ(T5ForConditionalGeneration::count_parameters(T5Config::preset("t5-v1_1-small")),
            76961152);
  EXPECT_EQ(T5ForConditionalGeneration::count_parameters(T5Config::preset("t5-base")), 222903552);
  for (bool gated : {false, true}) {
    T5Config c = tiny_decoder3(gated);
    EXPECT_EQ(T5ForConditionalGeneration(c).num_parameters(),
              T5ForConditionalGeneration::count_parameters(c));
  }
}

TEST(T5Model, init_follows_transformers_scales) {
  T5Config c = tiny_decoder3();
  c.d_model = 64;
  c.d_kv = 32;
  c.d_ff = 256;
  c.vocab_size = 300;
  T5ForConditionalGeneration m(c);
  Generator gen(5);
  m.init_weights(&gen);
  auto stddev = [](const Tensor& t) {
    std::vector<double> v = t.to_vector<double>();
    double s = 0;
    for (double x : v) s += x * x;
    return std::sqrt(s / v.size());
  };
  EXPECT_NEAR(stddev(m.shared.weight), 1.0, 0.05);
  EXPECT_NEAR(stddev(*m.find_parameter("encoder.block.0.layer.0.SelfAttention.q.weight")),
              1 / std::sqrt(64.0 * 32), 0.1 / std::sqrt(64.0 * 32));
  EXPECT_NEAR(stddev(*m.find_parameter("decoder.block.1.layer.2.DenseReluDense.wo.weight")),
              1 / std::sqrt(256.0), 0.1 / 16);
  EXPECT_EQ(m.find_parameter("decoder.final_layer_norm.weight")->to_vector<float>()[3], 1.0f);
}

TEST(T5Model, forward_shapes_and_loss_ignores_minus_100) {
  T5ForConditionalGeneration m(tiny_decoder3(true));
  Generator gen(1);
  m.init_weights(&gen);
  m.eval();
  Tensor ids = Tensor::from_vector<int64_t>({5, 6, 7, 1, 8, 9, 1, 0}, Shape{2, 4});
  Tensor mask = Tensor::from_vector<int64_t>({1, 1, 1, 1, 1, 1, 1, 0}, Shape{2, 4});
  Tensor labels = Tensor::from_vector<int64_t>({3, 4, 1, 7, 1, -100}, Shape{2, 3});
  EXPECT_EQ(m.shift_right(labels).to_vector<int64_t>(), (std::vector<int64_t>{0, 3, 4, 0, 7, 1}));
  T5Inputs in{ids, Tensor(), mask, Tensor(), Tensor(), labels};
  T5Output out = m.forward(in);
  EXPECT_EQ(out.logits.shape(), (Shape{2, 3, 40}));
  EXPECT_EQ(out.encoder_hidden_states.shape(), (Shape{2, 4, 16}));
  // The mean over the five kept tokens, from the logits by hand.
  std::vector<double> lg = out.logits.to_vector<double>();
  std::vector<int64_t> lab = labels.to_vector<int64_t>();
  double total = 0;
  int kept = 0;
  for (int r = 0; r < 6; ++r) {
    if (lab[r] == -100) continue;
    double mx = -1e300, s = 0;
    for (int v = 0; v < 40; ++v) mx = std::max(mx, lg[r * 40 + v]);
    for (int v = 0; v < 40; ++v) s += std::exp(lg[r * 40 + v] - mx);
    total += mx + std::log(s) - lg[r * 40 + lab[r]];
    ++kept;
  }
  EXPECT_NEAR(out.loss.item(), total / kept, 1e-5);
  // A padded input position does not change the other example's outputs.
  Tensor ids2 = Tensor::from_vector<int64_t>({5, 6, 7, 1, 8, 9, 1, 33}, Shape{2, 4});
  T5Output out2 = m.forward({ids2, Tensor(), mask, Tensor(), Tensor(), labels});
  sp::testing::expect_values(out2.logits, out.logits.to_vector<double>(), 1e-6);
  EXPECT_THROW_MSG(m.forward({ids, m.embed(ids), mask, Tensor(), Tensor(), labels}),
                   "[T5] give exactly one of input_ids and inputs_embeds");
}

TEST(T5Model, cached_decoding_matches_full_decoding) {
  T5ForConditionalGeneration m(tiny_decoder3(true));
  Generator gen(2);
  m.init_weights(&gen);
  m.eval();
  NoGradGuard no_grad;
  Tensor ids = Tensor::from_vector<int64_t>({5, 6, 7, 1, 8, 9, 1, 0}, Shape{2, 4});
  Tensor mask = Tensor::from_vector<int64_t>({1, 1, 1, 1, 1, 1, 1, 0}, Shape{2, 4});
  Tensor dec = Tensor::from_vector<int64_t>({0, 3, 4, 5, 0, 7, 1, 2}, Shape{2, 4});
  Tensor enc = m.encode(m.embed(ids), mask);
  Tensor full = m.lm_logits(m.decode(dec, enc, mask));  // [2, 4, V]
  T5Cache cache = m.make_cache();
  for (int64_t t = 0; t < 4; ++t) {
    Tensor step =
        m.lm_logits(m.decode(dec.slice(1, t, t + 1).contiguous(), enc, mask, Tensor(), &cache));
    sp::testing::expect_values(step, full.slice(1, t, t + 1).contiguous().to_vector<double>(),
                               1e-5);
  }
  EXPECT_EQ(cache.length, 4);
  EXPECT_EQ(cache.self[0].k.shape(), (Shape{2, 2, 4, 6}));
}

// A mask or encoder batch of another size broadcast instead of failing: a [1, S] mask
// silently masked every row like row 0, and one encoded input served every decoder row.
TEST(T5Model, batch_size_mismatches_are_errors) {
  T5ForConditionalGeneration m(tiny_decoder3(true));
  Generator gen(2);
  m.init_weights(&gen);
  m.eval();
  NoGradGuard no_grad;
  Tensor ids = Tensor::from_vector<int64_t>({5, 6, 7, 8}, Shape{2, 2});
  Tensor one_mask = Tensor::from_vector<int64_t>({1, 0}, Shape{1, 2});
  EXPECT_THROW_MSG(greedy_generate(m, ids, one_mask),
                   "[T5Stack] attention mask is [1, 2] i64, expected one row per example of the "
                   "batch of 2");
  EXPECT_THROW_MSG(m.encode(m.embed(ids), Tensor::ones(Shape{3, 2}, DType::i64)),
                   "[T5Stack] attention mask is [3, 2] i64");
  T5Inputs in;
  in.input_ids = ids.slice(0, 0, 1).contiguous();
  in.labels = Tensor::from_vector<int64_t>({3, 1, 4, 1}, Shape{2, 2});
  EXPECT_THROW_MSG(score_sequences(m, in.input_ids, Tensor(), in.labels),
                   "[T5Stack] encoder states are [1, 2, 16] f32, expected [2, S, D] for a decoder "
                   "batch of 2");
  Tensor enc = m.encode(m.embed(ids));
  EXPECT_THROW_MSG(m.decode(Tensor::zeros(Shape{2, 1}, DType::i64), enc, one_mask),
                   "[T5Stack] encoder attention mask is [1, 2] i64");
}

TEST(T5Model, greedy_generation_and_rank_classification) {
  T5ForConditionalGeneration m(tiny_decoder3(false));
  Generator gen(3);
  m.init_weights(&gen);
  m.eval();
  Tensor ids = Tensor::from_vector<int64_t>({5, 6, 7, 1, 8, 9, 1, 0}, Shape{2, 4});
  Tensor mask = Tensor::from_vector<int64_t>({1, 1, 1, 1, 1, 1, 1, 0}, Shape{2, 4});
  GenerateOptions o;
  o.max_new_tokens = 5;
  auto out = greedy_generate(m, ids, mask, o);
  ASSERT_EQ(out.size(), 2u);
  // Each step's token is the argmax of the full (uncached) decoder over the prefix.
  for (int b = 0; b < 2; ++b) {
    ASSERT_FALSE(out[b].empty());
    std::vector<int64_t> prefix{0};
    for (size_t t = 0; t < out[b].size(); ++t) {
      NoGradGuard ng;
      Tensor row = ids.slice(0, b, b + 1).contiguous(), rm = mask.slice(0, b, b + 1).contiguous();
      Tensor lg =
          m.lm_logits(m.decode(Tensor::from_vector(prefix, Shape{1, (int64_t)prefix.size()}),
                               m.encode(m.embed(row), rm), rm));
      int64_t best = argmax(lg, -1).to_vector<int64_t>().back();
      EXPECT_EQ(out[b][t], best);
      prefix.push_back(best);
    }
    EXPECT_TRUE(out[b].size() == 5 || out[b].back() == 1);
  }
  std::vector<SequenceScore> scores;
  int64_t best = rank_classify(m, {5, 6, 7, 1}, {{3, 1}, {4, 9, 1}, {out[0][0], 1}}, &scores);
  ASSERT_EQ(scores.size(), 3u);
  EXPECT_EQ(scores[1].num_tokens, 3);
  for (const auto& s : scores) EXPECT_LT(s.logprob, 0);
  for (const auto& s : scores) EXPECT_LE(s.logprob, scores[best].logprob);
  // A candidate's score equals the loss computed alone.
  T5Output alone =
      m.forward({Tensor::from_vector<int64_t>({5, 6, 7, 1}, Shape{1, 4}), Tensor(), Tensor(),
                 Tensor(), Tensor(), Tensor::from_vector<int64_t>({4, 9, 1}, Shape{1, 3})});
  EXPECT_NEAR(scores[1].loss(), alone.loss.item(), 1e-5);
}

TEST(T5Checkpoint, save_load_round_trip_and_strict_errors) {
  T5ForConditionalGeneration m(tiny_decoder3(true));
  Generator gen(4);
  m.init_weights(&gen);
  const std::string dir = temp_dir("roundtrip");
  save_t5(m, dir);
  EXPECT_TRUE(std::filesystem::exists(dir + "/config.json"));
  auto saved_dtype = [&] {
    return nlohmann::json::parse(std::ifstream(dir + "/config.json"))["torch_dtype"];
  };
  EXPECT_EQ(saved_dtype(), "float32");  // what transformers loads with torch_dtype="auto"
  auto back = load_t5(dir);
  NamedTensors a = m.state_dict(), b = back->state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.to_vector<float>(), b[i].second.to_vector<float>()) << a[i].first;
  }
  // bf16 on disk, loaded as f32 and as bf16.
  save_t5(m, dir, DType::bf16);
  SafetensorsFile f = SafetensorsFile::open(dir + "/model.safetensors");
  EXPECT_EQ(f.info("shared.weight").dtype, "BF16");
  EXPECT_EQ(saved_dtype(), "bfloat16");
  auto f32 = load_t5(dir);
  EXPECT_EQ(f32->shared.weight.dtype(), DType::f32);
  EXPECT_NEAR(f32->shared.weight.to_vector<float>()[7], m.shared.weight.to_vector<float>()[7],
              std::abs(m.shared.weight.to_vector<float>()[7]) * 1e-2);
  T5LoadOptions o;
  o.dtype = DType::bf16;
  EXPECT_EQ(load_t5(dir, o)->find_parameter("lm_head.weight")->dtype(), DType::bf16);

  // f16 on disk; shards with an index.
  save_t5(m, dir, DType::f16, /*max_shard_bytes=*/4096);
  EXPECT_TRUE(std::filesystem::exists(dir + "/model.safetensors.index.json"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/model.safetensors"));
  EXPECT_EQ(saved_dtype(), "float16");
  T5LoadReport sharded_report;
  auto sharded = load_t5(dir, {}, &sharded_report);
  EXPECT_TRUE(sharded_report.warnings.empty());
  {  // The reader's index warnings reach the report (and stderr).
    const std::string index_path = dir + "/model.safetensors.index.json";
    nlohmann::json index = nlohmann::json::parse(std::ifstream(index_path));
    index["metadata"]["total_size"] = 12345;
    std::ofstream(index_path) << index.dump(2);
    ::testing::internal::CaptureStderr();
    load_t5(dir, {}, &sharded_report);
    const std::string err = ::testing::internal::GetCapturedStderr();
    ASSERT_EQ(sharded_report.warnings.size(), 1u);
    EXPECT_NE(sharded_report.warnings[0].find("metadata.total_size is 12345"), std::string::npos);
    EXPECT_NE(err.find("[load_t5] " + dir + ": warning: metadata.total_size is 12345"),
              std::string::npos)
        << err;
  }
  EXPECT_NEAR(
      sharded->find_parameter("decoder.block.2.layer.2.DenseReluDense.wo.weight")
          ->to_vector<float>()[5],
      m.find_parameter("decoder.block.2.layer.2.DenseReluDense.wo.weight")->to_vector<float>()[5],
      1e-3);
  save_t5(m, dir);
  EXPECT_FALSE(std::filesystem::exists(dir + "/model.safetensors.index.json"));

  // Aliases and the legacy cross-attention bias are accepted; extra names are not.
  NamedTensors sd = m.state_dict();
  sd[0].first = "encoder.embed_tokens.weight";
  sd.emplace_back("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
                  Tensor::zeros(Shape{8, 2}));
  save_safetensors(dir + "/model.safetensors", sd);
  T5LoadReport report;
  auto aliased = load_t5(dir, {}, &report);
  EXPECT_EQ(aliased->shared.weight.to_vector<float>(), m.shared.weight.to_vector<float>());
  EXPECT_EQ(report.ignored.size(), 1u);
  sd.erase(sd.begin() + 3);
  sd.emplace_back("encoder.block.9.layer.0.SelfAttention.q.weight", Tensor::zeros(Shape{12, 16}));
  sd[1].second = Tensor::zeros(Shape{3, 3});
  sd[2].second = Tensor::zeros(sd[2].second.shape(), DType::i32);  // an integer weight
  save_safetensors(dir + "/model.safetensors", sd);
  try {
    load_t5(dir);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("1 missing:\n    " + a[3].first), std::string::npos) << msg;
    EXPECT_NE(msg.find("1 unexpected:\n    encoder.block.9.layer.0.SelfAttention.q.weight"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find(a[1].first + ": expected [12, 16], got [3, 3]"), std::string::npos) << msg;
    EXPECT_NE(msg.find(a[2].first + ": expected a floating dtype, got I32"), std::string::npos)
        << msg;
  }
  T5LoadOptions lax;
  lax.strict = false;
  load_t5(dir, lax, &report);
  EXPECT_EQ(report.missing.size(), 1u);
  EXPECT_EQ(report.unexpected.size(), 1u);
  EXPECT_EQ(report.mismatched.size(), 2u);
  std::filesystem::remove_all(dir);
}

// transformers 5 saves a T5 1.1 checkpoint with tie_word_embeddings: true (it forces that),
// scale_decoder_outputs: false, and the model's own lm_head.weight. A model built from that
// config.json is tied; load_t5_weights ignored the checkpoint's head, so the shared
// embedding served as the output projection and every logit was silently wrong.
TEST(T5Checkpoint, own_head_is_not_dropped_when_the_config_says_tied) {
  T5ForConditionalGeneration m(tiny_decoder3(true));
  Generator gen(5);
  m.init_weights(&gen);
  m.eval();
  const std::string dir = temp_dir("v5_head");
  save_t5(m, dir);
  T5Config v5 = m.config();
  v5.tie_word_embeddings = true;
  v5.scale_decoder_outputs = false;
  {
    std::ofstream out(dir + "/config.json");
    out << v5.to_json();
  }
  const T5Inputs in{.input_ids = Tensor::from_vector<int64_t>({5, 6, 7, 1}, Shape{1, 4}),
                    .labels = Tensor::from_vector<int64_t>({3, 4, 1}, Shape{1, 3})};
  const std::vector<double> want = m.forward(in).logits.to_vector<double>();
  // load_t5 builds the model from the checkpoint: the head is lm_head.weight.
  auto loaded = load_t5(dir);
  loaded->eval();
  sp::testing::expect_values(loaded->forward(in).logits, want, 1e-6);
  // A model built from config.json alone is tied: it cannot hold the checkpoint's head, and
  // loading into it must say so instead of computing with the wrong head.
  T5ForConditionalGeneration tied(T5Config::from_file(dir + "/config.json"));
  EXPECT_THROW_MSG(load_t5_weights(tied, dir), "1 unexpected:\n    lm_head.weight");
  // A stored head equal to shared.weight (a tied model saved with its duplicate) is ignored.
  NamedTensors sd = tied.state_dict();
  sd.emplace_back("lm_head.weight", tied.shared.weight);
  save_safetensors(dir + "/model.safetensors", sd);
  const T5LoadReport r = load_t5_weights(tied, dir);
  EXPECT_EQ(r.ignored, (std::vector<std::string>{"lm_head.weight"}));
  // load_t5 builds that checkpoint tied (the head is the embedding either way), so a save
  // writes it as transformers 4 reads it too: tied, without lm_head.weight.
  auto dup = load_t5(dir);
  EXPECT_TRUE(dup->config().tie_word_embeddings);
  dup->eval();
  sp::testing::expect_values(dup->forward(in).logits, tied.forward(in).logits.to_vector<double>(),
                             0);
  // Tied without the output scale: transformers 4 would scale it. The save says so.
  ::testing::internal::CaptureStderr();
  save_t5(*dup, dir + "/resaved");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("a tied model without the d_model^-0.5 output scale"), std::string::npos)
      << err;
  EXPECT_NE(err.find("transformers 4 ignores it and computes the logits with the scale"),
            std::string::npos)
      << err;
  EXPECT_FALSE(
      SafetensorsFile::open(dir + "/resaved/model.safetensors").contains("lm_head.weight"));
  EXPECT_EQ(hf4_misread_warning(m.config()), "");  // T5 1.1: untied, unscaled
  std::filesystem::remove_all(dir);
}

// A config that says untied over a checkpoint without lm_head.weight loads tied, as
// transformers 5 does, and says so (transformers 4 would leave the head untrained).
TEST(T5Checkpoint, untied_config_without_a_head_loads_tied_with_a_warning) {
  T5ForConditionalGeneration m(tiny_decoder3());  // tied: saved without lm_head.weight
  Generator gen(6);
  m.init_weights(&gen);
  const std::string dir = temp_dir("untied_no_head");
  save_t5(m, dir);
  T5Config untied = m.config();
  untied.tie_word_embeddings = false;
  std::ofstream(dir + "/config.json") << untied.to_json();
  T5LoadReport report;
  ::testing::internal::CaptureStderr();
  auto loaded = load_t5(dir, {}, &report);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(loaded->config().tie_word_embeddings);
  ASSERT_EQ(report.warnings.size(), 1u);
  EXPECT_NE(report.warnings[0].find("has no lm_head.weight: the head is shared.weight"),
            std::string::npos);
  EXPECT_NE(err.find("[load_t5] " + dir + ": warning: config.json says tie_word_embeddings: false"),
            std::string::npos)
      << err;
  save_t5(m, dir);  // the checkpoint's own config: no warning
  load_t5(dir, {}, &report);
  EXPECT_TRUE(report.warnings.empty());
  std::filesystem::remove_all(dir);
}

TEST(T5Model, bf16_forward_runs_in_bf16_with_f32_loss) {
  T5ForConditionalGeneration m(tiny_decoder3(true));
  Generator gen(6);
  m.init_weights(&gen);
  m.eval();
  Tensor ids = Tensor::from_vector<int64_t>({5, 6, 7, 1}, Shape{1, 4});
  Tensor labels = Tensor::from_vector<int64_t>({3, 4, 1}, Shape{1, 3});
  T5Output ref = m.forward({ids, Tensor(), Tensor(), Tensor(), Tensor(), labels});
  m.to(DType::bf16);
  T5Output out = m.forward({ids, Tensor(), Tensor(), Tensor(), Tensor(), labels});
  EXPECT_EQ(out.logits.dtype(), DType::bf16);
  EXPECT_EQ(out.loss.dtype(), DType::f32);
  EXPECT_NEAR(out.loss.item(), ref.loss.item(), 0.05 * ref.loss.item());
}

TEST(T5Model, frozen_backbone_sends_gradients_only_to_inputs_embeds) {
  T5ForConditionalGeneration m(tiny_decoder3(true));
  Generator gen(8);
  m.init_weights(&gen);
  m.eval();
  m.requires_grad_(false);
  EXPECT_EQ(m.num_parameters(/*trainable_only=*/true), 0);
  Tensor ids = Tensor::from_vector<int64_t>({5, 6, 7, 1}, Shape{1, 4});
  Tensor prompt = Tensor::full(Shape{1, 2, 16}, 0.5);
  prompt.requires_grad_(true);
  Tensor embeds = cat({prompt, m.embed(ids)}, 1);  // prompt tuning: [1, 2 + 4, D]
  T5Output out = m.forward({.inputs_embeds = embeds,
                            .attention_mask = Tensor::ones(Shape{1, 6}, DType::i64),
                            .labels = Tensor::from_vector<int64_t>({3, 4, 1}, Shape{1, 3})});
  out.loss.backward();
  ASSERT_TRUE(prompt.grad().defined());
  EXPECT_EQ(prompt.grad().shape(), (Shape{1, 2, 16}));
  double norm = 0;
  for (double g : prompt.grad().to_vector<double>()) norm += g * g;
  EXPECT_GT(norm, 0);
  for (const auto& [name, p] : m.named_parameters()) EXPECT_FALSE(p.grad().defined()) << name;
}

TEST(T5Model, dropout_is_active_only_in_training) {
  T5Config c = tiny_decoder3(true);
  c.dropout_rate = 0.3;
  Generator drop(9);
  T5ForConditionalGeneration m(c, DType::f32, &drop);
  Generator gen(10);
  m.init_weights(&gen);
  T5Inputs in{.input_ids = Tensor::from_vector<int64_t>({5, 6, 7, 1}, Shape{1, 4}),
              .labels = Tensor::from_vector<int64_t>({3, 4, 1}, Shape{1, 3})};
  const double a = m.forward(in).loss.item(), b = m.forward(in).loss.item();
  EXPECT_NE(a, b);  // two different masks
  drop.manual_seed(9);
  EXPECT_EQ(m.forward(in).loss.item(), a);  // the same stream, the same masks
  m.eval();
  EXPECT_EQ(m.forward(in).loss.item(), m.forward(in).loss.item());
}

}  // namespace
}  // namespace sp
