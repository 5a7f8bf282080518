#include "experiments/inference/prompt_neighbors.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"

namespace sp {

nlohmann::json PromptPositionNeighbors::to_json(const T5Tokenizer& tokenizer) const {
  nlohmann::json row = {{"prompt", prompt}, {"position", position}, {"labels", labels}};
  row["neighbors"] = nlohmann::json::array();
  for (const Neighbor& n : neighbors)
    row["neighbors"].push_back(
        {{"id", n.id}, {"piece", tokenizer.id_to_piece(n.id)}, {"cosine", n.cosine}});
  return row;
}

std::vector<PromptPositionNeighbors> prompt_neighbors(const Tensor& prompts,
                                                      const Tensor& embedding,
                                                      const T5Tokenizer& tokenizer, int64_t k,
                                                      const std::vector<std::string>& labels) {
  SP_CHECK(prompts.dim() == 3, "[neighbors] prompts must be [P, p, D], got ", prompts.dim(),
           " dims");
  SP_CHECK(k >= 1, "[neighbors] k must be >= 1, got ", k);
  // A diverged prompt would list arbitrary pieces with a cosine of NaN.
  const std::vector<double> values = prompts.to_vector<double>();  // [P * p * D], small
  const int64_t len = prompts.size(1), D = prompts.size(2);
  for (size_t i = 0; i < values.size(); ++i)
    SP_CHECK(std::isfinite(values[i]), "[neighbors] prompt ", static_cast<int64_t>(i) / D / len,
             " position ", static_cast<int64_t>(i) / D % len, " holds ", values[i],
             ": a prompt must be finite");
  // Each label's head: its first piece other than a bare "▁"; -1 when that is <unk> (which
  // stands for whatever the vocabulary lacks: a prompt near it is near no label). Later
  // pieces are word endings many words share ("ment" of "not_entailment").
  std::vector<int64_t> label_heads;
  for (const std::string& label : labels) {
    int64_t head = -1;
    for (int64_t id : tokenizer.encode(label, /*add_eos=*/false)) {
      if (tokenizer.id_to_piece(id) == "\xE2\x96\x81") continue;
      if (!tokenizer.is_special(id)) head = id;
      break;
    }
    label_heads.push_back(head);
  }
  std::vector<PromptPositionNeighbors> out;
  for (int64_t p = 0; p < prompts.size(0); ++p) {
    const auto nearest =
        nearest_neighbors(prompts.select(0, p), embedding, k, tokenizer.vocab_size());
    for (size_t i = 0; i < nearest.size(); ++i) {
      PromptPositionNeighbors row{p, static_cast<int64_t>(i), nearest[i], {}};
      for (size_t l = 0; l < labels.size(); ++l) {
        const bool hit = std::any_of(row.neighbors.begin(), row.neighbors.end(),
                                     [&](const Neighbor& n) { return n.id == label_heads[l]; });
        if (hit) row.labels.push_back(labels[l]);
      }
      out.push_back(std::move(row));
    }
  }
  return out;
}

}  // namespace sp
