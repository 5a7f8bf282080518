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
  std::vector<std::vector<int64_t>> label_pieces;
  for (const std::string& label : labels) {
    std::vector<int64_t> ids;
    // <unk> stands for whatever the vocabulary lacks: a prompt near it is near no label.
    for (int64_t id : tokenizer.encode(label, /*add_eos=*/false))
      if (!tokenizer.is_special(id) && tokenizer.id_to_piece(id) != "\xE2\x96\x81")
        ids.push_back(id);
    label_pieces.push_back(std::move(ids));
  }
  std::vector<PromptPositionNeighbors> out;
  for (int64_t p = 0; p < prompts.size(0); ++p) {
    const auto nearest =
        nearest_neighbors(prompts.select(0, p), embedding, k, tokenizer.vocab_size());
    for (size_t i = 0; i < nearest.size(); ++i) {
      PromptPositionNeighbors row{p, static_cast<int64_t>(i), nearest[i], {}};
      for (size_t l = 0; l < labels.size(); ++l) {
        const auto& pieces = label_pieces[l];
        const bool hit = std::any_of(row.neighbors.begin(), row.neighbors.end(), [&](const Neighbor& n) {
          return std::find(pieces.begin(), pieces.end(), n.id) != pieces.end();
        });
        if (hit) row.labels.push_back(labels[l]);
      }
      out.push_back(std::move(row));
    }
  }
  return out;
}

}  // namespace sp
