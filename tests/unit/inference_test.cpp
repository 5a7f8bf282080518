// The library behind `softprompt score / generate / tokenize` (experiments/inference/),
// against the transformers fixtures in tests/fixtures/t5/<case>/: scores sum to the fixture's
// loss, greedy outputs equal transformers' generate(), results do not depend on the batch
// size, and bad lines fail with "<file>:<line>: <what was expected>".
#include "experiments/inference/inference.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "models/io/safetensors.h"
#include "test_util.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

const std::string kT5 = std::string(SP_FIXTURES_DIR) + "/t5/";
const std::string kSpiece = std::string(SP_FIXTURES_DIR) + "/tokenizer/spiece.model";
const std::vector<std::string> kCases = {"v10_tied_relu", "v11_gated_gelu_untied",
                                         "padded_batch",  "long_inputs",
                                         "bf16_on_disk",  "decoder_layers_differ"};

// The fixture's examples as JSON lines (padding cut off the inputs, -100 kept in labels).
struct FixtureData {
  std::string jsonl;
  std::vector<std::vector<int64_t>> inputs;
  std::vector<std::vector<int64_t>> greedy;  // cut after eos, as ours stop there
  double loss = 0;
};

std::vector<int64_t> row(const std::vector<int64_t>& v, int64_t b, int64_t n) {
  return {v.begin() + b * n, v.begin() + (b + 1) * n};
}

FixtureData fixture_data(const std::string& name) {
  SafetensorsFile e = SafetensorsFile::open(kT5 + name + "/expected.safetensors");
  Tensor ids = e.tensor("input_ids", DType::i64), labels = e.tensor("labels", DType::i64);
  Tensor greedy = e.tensor("greedy", DType::i64);
  const int64_t B = ids.size(0), S = ids.size(1), T = labels.size(1), G = greedy.size(1);
  std::vector<int64_t> mask = e.contains("attention_mask")
                                  ? e.tensor("attention_mask", DType::i64).to_vector<int64_t>()
                                  : std::vector<int64_t>(B * S, 1);
  std::vector<int64_t> id = ids.to_vector<int64_t>(), lab = labels.to_vector<int64_t>();
  std::vector<int64_t> gen = greedy.to_vector<int64_t>();
  FixtureData d;
  d.loss = e.tensor("loss", DType::f64).item<double>();
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> in;
    for (int64_t s = 0; s < S; ++s)
      if (mask[b * S + s]) in.push_back(id[b * S + s]);
    d.inputs.push_back(in);
    std::vector<int64_t> g = row(gen, b, G);
    auto eos = std::find(g.begin(), g.end(), 1);
    if (eos != g.end()) g.erase(eos + 1, g.end());
    d.greedy.push_back(g);
    d.jsonl += nlohmann::json{{"input_ids", in}, {"labels", row(lab, b, T)}}.dump() + "\n";
  }
  return d;
}

std::vector<nlohmann::json> parse_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::vector<nlohmann::json> run_score(const InferenceModel& m, const std::string& jsonl,
                                      int64_t batch_size = 8) {
  std::istringstream in(jsonl);
  std::ostringstream out;
  JsonlRunOptions o;
  o.batch_size = batch_size;
  score_jsonl(m, in, "data.jsonl", out, o);
  return parse_lines(out.str());
}

std::vector<nlohmann::json> run_generate(const InferenceModel& m, const std::string& jsonl,
                                         int64_t batch_size, int64_t max_new_tokens) {
  std::istringstream in(jsonl);
  std::ostringstream out;
  JsonlRunOptions o;
  o.batch_size = batch_size;
  o.max_new_tokens = max_new_tokens;
  generate_jsonl(m, in, "data.jsonl", out, o);
  return parse_lines(out.str());
}

TEST(Inference, scores_add_up_to_the_transformers_loss) {
  for (const std::string& name : kCases) {
    SCOPED_TRACE(name);
    const FixtureData d = fixture_data(name);
    const InferenceModel m = load_inference_model(kT5 + name);
    const std::vector<nlohmann::json> lines = run_score(m, d.jsonl);
    ASSERT_EQ(lines.size(), d.inputs.size());
    // transformers' loss is the mean over every target token of the batch.
    double logprob = 0;
    int64_t tokens = 0;
    for (const nlohmann::json& j : lines) {
      ASSERT_EQ(j.size(), 3u) << j.dump();
      const double lp = j.at("logprob").get<double>();
      const int64_t n = j.at("num_tokens").get<int64_t>();
      EXPECT_NEAR(j.at("loss").get<double>(), -lp / static_cast<double>(n), 1e-12);
      logprob += lp;
      tokens += n;
    }
    EXPECT_NEAR(-logprob / static_cast<double>(tokens), d.loss, 1e-4 * d.loss);
  }
}

TEST(Inference, padded_batch_counts_only_labels_that_are_not_ignored) {
  const FixtureData d = fixture_data("padded_batch");
  const std::vector<nlohmann::json> lines =
      run_score(load_inference_model(kT5 + "padded_batch"), d.jsonl);
  ASSERT_EQ(lines.size(), 3u);
  // make_t5_fixtures.py: 6 labels, the last two of row 1 and all but two of row 2 are -100.
  EXPECT_EQ(lines[0]["num_tokens"], 6);
  EXPECT_EQ(lines[1]["num_tokens"], 4);
  EXPECT_EQ(lines[2]["num_tokens"], 2);
}

TEST(Inference, generation_equals_transformers_greedy) {
  for (const std::string& name : kCases) {
    SCOPED_TRACE(name);
    const FixtureData d = fixture_data(name);
    const InferenceModel m = load_inference_model(kT5 + name);
    const std::vector<nlohmann::json> lines = run_generate(m, d.jsonl, 8, 8);
    ASSERT_EQ(lines.size(), d.greedy.size());
    for (size_t b = 0; b < lines.size(); ++b) {
      EXPECT_EQ(lines[b].at("output_ids").get<std::vector<int64_t>>(), d.greedy[b]) << "row " << b;
      EXPECT_FALSE(lines[b].contains("text")) << "no spiece.model, so no text";
    }
  }
}

TEST(Inference, results_do_not_depend_on_the_batch_size) {
  // Rows of different lengths, so that batches mix padding differently with each size.
  const FixtureData d = fixture_data("padded_batch");
  const FixtureData l = fixture_data("v11_gated_gelu_untied");  // same vocabulary size
  const std::string jsonl = d.jsonl + l.jsonl + d.jsonl;
  const InferenceModel m = load_inference_model(kT5 + "padded_batch");
  const std::vector<nlohmann::json> one = run_score(m, jsonl, 1);
  const std::vector<nlohmann::json> gen_one = run_generate(m, jsonl, 1, 6);
  ASSERT_EQ(one.size(), 8u);
  for (int64_t bs : {2, 3, 8}) {
    SCOPED_TRACE(bs);
    const std::vector<nlohmann::json> s = run_score(m, jsonl, bs);
    ASSERT_EQ(s.size(), one.size());
    for (size_t i = 0; i < s.size(); ++i) {
      const double want = one[i]["logprob"].get<double>();
      EXPECT_NEAR(s[i]["logprob"].get<double>(), want, 1e-5 * std::abs(want)) << "line " << i;
      EXPECT_EQ(s[i]["num_tokens"], one[i]["num_tokens"]);
    }
    EXPECT_EQ(run_generate(m, jsonl, bs, 6), gen_one);
  }
  // Lines 0-2 and 5-7 are the same examples: identical results, in input order.
  for (size_t i = 0; i < 3; ++i)
    EXPECT_NEAR(one[i]["logprob"].get<double>(), one[i + 5]["logprob"].get<double>(), 1e-9);
}

TEST(Inference, bf16_scores_stay_close_to_f32) {
  const FixtureData d = fixture_data("v11_gated_gelu_untied");
  const std::vector<nlohmann::json> f32 =
      run_score(load_inference_model(kT5 + "v11_gated_gelu_untied"), d.jsonl);
  const std::vector<nlohmann::json> bf16 =
      run_score(load_inference_model(kT5 + "v11_gated_gelu_untied", DType::bf16), d.jsonl);
  ASSERT_EQ(f32.size(), bf16.size());
  for (size_t i = 0; i < f32.size(); ++i) {
    const double a = f32[i]["loss"].get<double>(), b = bf16[i]["loss"].get<double>();
    EXPECT_NEAR(b, a, 0.05 * a);
    EXPECT_NE(a, b) << "bf16 compute should round differently from f32";
  }
}

TEST(Inference, output_lines_have_the_documented_keys_in_order) {
  SequenceScore s;
  s.logprob = -3;
  s.num_tokens = 2;
  EXPECT_EQ(score_json(s), R"({"loss":1.5,"logprob":-3.0,"num_tokens":2})");
  EXPECT_EQ(generate_json({5, 1}, nullptr), R"({"output_ids":[5,1]})");
  EXPECT_EQ(ids_json({361, 1}), "[361,1]");
}

// A checkpoint directory with the tokenizer fixture beside a fixture model (128 ids).
class InferenceText : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sp_inference_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    for (const char* f : {"config.json", "model.safetensors"})
      fs::copy_file(kT5 + "padded_batch/" + f, dir_ / f, fs::copy_options::overwrite_existing);
    fs::copy_file(kSpiece, dir_ / "spiece.model", fs::copy_options::overwrite_existing);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Words of the tokenizer fixture whose ids all fall inside the model's 128.
  std::vector<std::string> small_words(const T5Tokenizer& tok) const {
    std::vector<std::string> words;
    for (int64_t id = 3; id < 128 && words.size() < 12; ++id) {
      std::string p = tok.id_to_piece(id);
      if (p.rfind("\xE2\x96\x81", 0) != 0 || p.size() <= 3) continue;  // "▁word" pieces
      std::string w = p.substr(3);
      std::vector<int64_t> ids = tok.encode(w);
      if (std::all_of(ids.begin(), ids.end(), [](int64_t i) { return i < 128; }))
        words.push_back(w);
    }
    return words;
  }

  fs::path dir_;
};

TEST_F(InferenceText, text_lines_score_and_generate_like_their_token_ids) {
  const InferenceModel m = load_inference_model(dir_.string());
  ASSERT_TRUE(m.tokenizer.has_value());
  const std::vector<std::string> w = small_words(*m.tokenizer);
  ASSERT_GE(w.size(), 4u);
  const std::string input = w[0] + " " + w[1] + " " + w[2], target = w[3] + " " + w[1];
  const std::vector<int64_t> in_ids = m.tokenizer->encode(input);
  const std::vector<int64_t> tgt_ids = m.tokenizer->encode(target);
  ASSERT_EQ(in_ids.back(), 1);
  const std::string text_line = nlohmann::json{{"inputs", input}, {"targets", target}}.dump();
  const std::string ids_line = nlohmann::json{{"input_ids", in_ids}, {"labels", tgt_ids}}.dump();
  const std::vector<nlohmann::json> s = run_score(m, text_line + "\n" + ids_line + "\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0]["num_tokens"], static_cast<int64_t>(tgt_ids.size()));
  // The same tokens in two rows of one batch: equal up to the f32 rounding of the row's
  // place in the matmul kernels (oneDNN's AVX2 kernels round the two rows differently).
  EXPECT_NEAR(s[0]["logprob"].get<double>(), s[1]["logprob"].get<double>(),
              1e-6 * std::abs(s[0]["logprob"].get<double>()));

  const std::vector<nlohmann::json> g = run_generate(m, text_line + "\n" + ids_line + "\n", 8, 5);
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0], g[1]);
  const std::vector<int64_t> out = g[0]["output_ids"].get<std::vector<int64_t>>();
  DecodeOptions dec;
  dec.stop_at_eos = true;
  EXPECT_EQ(g[0]["text"].get<std::string>(), m.tokenizer->decode(out, dec));
}

TEST_F(InferenceText, tokenizer_comes_from_the_directory_or_the_file) {
  const std::vector<int64_t> want = {361, 271, 27, 819, 1};  // tokenizer fixture's "Hello world"
  EXPECT_EQ(load_tokenizer_for(dir_.string()).encode("Hello world"), want);
  EXPECT_EQ(load_tokenizer_for(kSpiece).encode("Hello world"), want);
  EXPECT_THROW_MSG(load_tokenizer_for(kT5 + "padded_batch"), "has no spiece.model");
  EXPECT_THROW_MSG(load_tokenizer_for((dir_ / "missing").string()), "does not exist");
}

TEST_F(InferenceText, ids_beyond_the_models_vocabulary_are_an_error) {
  const InferenceModel m = load_inference_model(dir_.string());
  // "q" is piece 999 of the tokenizer fixture: a valid token for it, not for a 128-row model.
  EXPECT_THROW_MSG(run_score(m, R"({"inputs": "q", "targets": "q"})"),
                   "data.jsonl:1: \"inputs\" tokenizes to id 999, outside the model's "
                   "vocabulary [0, 128)");
}

// Runs score on the text and returns the error (empty when none was thrown).
std::string score_error(const InferenceModel& m, const std::string& jsonl) {
  try {
    run_score(m, jsonl);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Inference, bad_lines_name_the_file_the_line_and_what_was_expected) {
  const InferenceModel m = load_inference_model(kT5 + "v10_tied_relu");
  const std::string good = R"({"input_ids": [5, 6, 1], "labels": [7, 1]})";
  // Blank lines count: the bad line below is line 3.
  EXPECT_EQ(score_error(m, good + "\n\n{\"labels\": [1]}\n"),
            "data.jsonl:3: expected \"input_ids\" or \"inputs\"");
  EXPECT_EQ(score_error(m, R"({"input_ids": [5, 1]})"),
            "data.jsonl:1: expected \"labels\" or \"targets\"");
  EXPECT_EQ(score_error(m, good + "\n{\"input_ids\": [5, 1], \"labels\": [1]"),
            "data.jsonl:2: expected a JSON object, got text that is not valid JSON");
  EXPECT_EQ(score_error(m, "[1, 2]"), "data.jsonl:1: expected a JSON object, got an array");
  EXPECT_EQ(score_error(m, R"({"input_ids": "5 6", "labels": [1]})"),
            "data.jsonl:1: expected \"input_ids\" to be an array of token ids, got a string");
  EXPECT_EQ(score_error(m, R"({"input_ids": [5, 2.5], "labels": [1]})"),
            "data.jsonl:1: expected \"input_ids\"[1] to be an integer token id, got a number");
  EXPECT_EQ(score_error(m, R"({"input_ids": [], "labels": [1]})"),
            "data.jsonl:1: expected \"input_ids\" to hold at least one token id");
  EXPECT_EQ(score_error(m, R"({"input_ids": [5, 128], "labels": [1]})"),
            "data.jsonl:1: \"input_ids\"[1] is 128, outside the vocabulary [0, 128)");
  EXPECT_EQ(score_error(m, R"({"input_ids": [-100], "labels": [1]})"),
            "data.jsonl:1: \"input_ids\"[0] is -100, outside the vocabulary [0, 128)");
  EXPECT_EQ(score_error(m, R"({"input_ids": [5], "labels": [-1]})"),
            "data.jsonl:1: \"labels\"[0] is -1, outside the vocabulary [0, 128) (or -100 to "
            "ignore it)");
  EXPECT_EQ(score_error(m, R"({"input_ids": [5], "labels": [18446744073709551615]})"),
            "data.jsonl:1: \"labels\"[0] is 18446744073709551615, outside the vocabulary [0, 128)");
  EXPECT_EQ(score_error(m, R"({"input_ids": [5], "labels": [-100, -100]})"),
            "data.jsonl:1: expected \"labels\" to hold at least one token id that is not -100");
  EXPECT_EQ(score_error(m, R"({"input_ids": [5], "inputs": "x", "labels": [1]})"),
            "data.jsonl:1: expected one of \"input_ids\" and \"inputs\", got both");
  EXPECT_EQ(score_error(m, R"({"inputs": "a b", "targets": "c"})"),
            "data.jsonl:1: \"inputs\" is text, but the model directory has no spiece.model to "
            "tokenize it (give token ids instead)");
  EXPECT_EQ(score_error(m, R"({"inputs": 3, "targets": "c"})"),
            "data.jsonl:1: expected \"inputs\" to be a string, got an integer");
  // -100 in labels is the ignore index, and an empty file is zero examples.
  EXPECT_EQ(score_error(m, R"({"input_ids": [5], "labels": [7, -100]})"), "");
  EXPECT_TRUE(run_score(m, "\n  \n").empty());
}

TEST(Inference, generate_needs_only_the_inputs) {
  const InferenceModel m = load_inference_model(kT5 + "v10_tied_relu");
  const std::vector<nlohmann::json> g = run_generate(m, "{\"input_ids\": [5, 6, 1]}\n", 4, 3);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_LE(g[0]["output_ids"].size(), 3u);
  EXPECT_GE(g[0]["output_ids"].size(), 1u);
  std::istringstream in("{\"labels\": [1]}\n");
  std::ostringstream out;
  EXPECT_THROW_MSG(generate_jsonl(m, in, "gen.jsonl", out),
                   "gen.jsonl:1: expected \"input_ids\" or \"inputs\"");
  EXPECT_TRUE(out.str().empty()) << "nothing is written before every line is valid";
}

TEST(Inference, bad_model_directories_and_options_are_errors) {
  EXPECT_THROW_MSG(load_inference_model(kT5 + "no_such_case"), "does not exist");
  EXPECT_THROW_MSG(load_inference_model(kT5 + "v10_tied_relu", DType::f64),
                   "dtype must be f32 or bf16");
  const InferenceModel m = load_inference_model(kT5 + "v10_tied_relu");
  std::istringstream in("{\"input_ids\": [5, 6, 1], \"labels\": [1]}\n");
  std::ostringstream out;
  JsonlRunOptions o;
  o.batch_size = 0;
  EXPECT_THROW_MSG(score_jsonl(m, in, "d.jsonl", out, o), "batch size must be >= 1, got 0");
}

}  // namespace
}  // namespace sp
