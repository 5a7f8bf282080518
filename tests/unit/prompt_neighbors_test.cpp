#include "experiments/inference/prompt_neighbors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

TEST(PromptNeighbors, FindsTheEmbeddingRowAndTheLabelsAmongTheNeighbours) {
  const T5Tokenizer tok =
      T5Tokenizer::load(std::string(SP_FIXTURES_DIR) + "/tokenizer/spiece.model");
  const int64_t V = tok.vocab_size(), D = 8;
  const Tensor embedding = testing::test_tensor({V, D}, 11, DType::f32);
  // The first piece of "True" (skipping a bare "▁") and a piece of neither label.
  int64_t true_piece = -1;
  for (int64_t id : tok.encode("True", /*add_eos=*/false))
    if (tok.id_to_piece(id) != "\xE2\x96\x81" && true_piece < 0) true_piece = id;
  ASSERT_GE(true_piece, 0);
  const std::vector<std::string> labels = {"True", "False"};
  int64_t other = 100;
  auto is_label_piece = [&](int64_t id) {
    for (const auto& l : labels)
      for (int64_t p : tok.encode(l, false))
        if (p == id) return true;
    return false;
  };
  while (is_label_piece(other)) ++other;
  const Tensor prompts =
      stack({embedding.select(0, true_piece), embedding.select(0, other)}, 0).unsqueeze(0);

  const auto rows = prompt_neighbors(prompts, embedding, tok, /*k=*/1, labels);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].position, 0);
  EXPECT_EQ(rows[0].neighbors[0].id, true_piece);
  EXPECT_NEAR(rows[0].neighbors[0].cosine, 1.0, 1e-5);
  EXPECT_EQ(rows[0].labels, std::vector<std::string>{"True"});
  EXPECT_EQ(rows[1].neighbors[0].id, other);
  EXPECT_TRUE(rows[1].labels.empty());
  const nlohmann::json j = rows[0].to_json(tok);
  EXPECT_EQ(j["neighbors"][0]["piece"], tok.id_to_piece(true_piece));
  EXPECT_THROW_MSG(prompt_neighbors(prompts.squeeze(0), embedding, tok, 1, labels),
                   "prompts must be [P, p, D]");
}

// "not_entailment" holds <unk> in this vocabulary (no "_" piece): a prompt next to <unk>
// was reported as next to the label.
TEST(PromptNeighbors, UnknownPiecesAreNoLabelEvidence) {
  const T5Tokenizer tok =
      T5Tokenizer::load(std::string(SP_FIXTURES_DIR) + "/tokenizer/spiece.model");
  const std::vector<int64_t> ids = tok.encode("not_entailment", /*add_eos=*/false);
  ASSERT_NE(std::find(ids.begin(), ids.end(), tok.unk_id()), ids.end());
  const Tensor embedding = testing::test_tensor({tok.vocab_size(), 8}, 11, DType::f32);
  const Tensor prompts =
      stack({embedding.select(0, tok.unk_id()), embedding.select(0, ids[0])}, 0).unsqueeze(0);
  const auto rows = prompt_neighbors(prompts, embedding, tok, 1, {"not_entailment"});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].neighbors[0].id, tok.unk_id());
  EXPECT_TRUE(rows[0].labels.empty());
  EXPECT_EQ(rows[1].labels, std::vector<std::string>{"not_entailment"});
}

// Only a label's head counts: a piece after it ("ment") is a word ending many words share.
TEST(PromptNeighbors, OnlyTheLabelsFirstPieceCounts) {
  const T5Tokenizer tok =
      T5Tokenizer::load(std::string(SP_FIXTURES_DIR) + "/tokenizer/spiece.model");
  const std::vector<int64_t> ids = tok.encode("entailment", /*add_eos=*/false);
  ASSERT_GT(ids.size(), 2u) << "needs a label of several pieces";
  const int64_t head = tok.id_to_piece(ids[0]) == "\xE2\x96\x81" ? ids[1] : ids[0];
  const Tensor embedding = testing::test_tensor({tok.vocab_size(), 8}, 11, DType::f32);
  const Tensor prompts =
      stack({embedding.select(0, ids.back()), embedding.select(0, head)}, 0).unsqueeze(0);
  const auto rows = prompt_neighbors(prompts, embedding, tok, 1, {"entailment"});
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_EQ(rows[0].neighbors[0].id, ids.back());
  EXPECT_TRUE(rows[0].labels.empty());
  EXPECT_EQ(rows[1].labels, std::vector<std::string>{"entailment"});
}

// A diverged prompt listed arbitrary pieces with a cosine of NaN.
TEST(PromptNeighbors, NonFinitePromptsAreAnError) {
  const T5Tokenizer tok =
      T5Tokenizer::load(std::string(SP_FIXTURES_DIR) + "/tokenizer/spiece.model");
  const Tensor embedding = testing::test_tensor({tok.vocab_size(), 4}, 11, DType::f32);
  std::vector<float> p = {1, 2, 3, 4, 0, 0, 0, 0, 1, 1, 1, 1, 0.5f, NAN, 1, 1};
  EXPECT_THROW_MSG(prompt_neighbors(Tensor::from_vector(p, Shape{2, 2, 4}), embedding, tok, 3, {}),
                   "[neighbors] prompt 1 position 1 holds nan: a prompt must be finite");
  p[13] = INFINITY;
  EXPECT_THROW_MSG(prompt_neighbors(Tensor::from_vector(p, Shape{2, 2, 4}), embedding, tok, 3, {}),
                   "prompt 1 position 1 holds inf");
  // A zero vector is finite: every cosine is 0 and ties go to the lower ids.
  p[13] = 1;
  const auto rows = prompt_neighbors(Tensor::from_vector(p, Shape{2, 2, 4}), embedding, tok, 3, {});
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[1].neighbors[0].id, 0);
  EXPECT_EQ(rows[1].neighbors[2].id, 2);
  EXPECT_EQ(rows[1].neighbors[0].cosine, 0.0);
}

}  // namespace
}  // namespace sp
