// `softprompt neighbors --model DIR --prompt PROMPT_DIR [-k 5] [--labels "True,False"]`:
// per prompt position, the k vocabulary pieces nearest by cosine similarity (the paper's
// interpretability analysis), and which class labels are among them. A label counts when
// one of its pieces (other than a bare "▁") is a neighbour.
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/cli/command.h"
#include "experiments/inference/inference.h"
#include "nn/peft/neighbors.h"
#include "nn/peft/prompt_tuning.h"
#include "tensor/error.h"

namespace sp::cli {
namespace {

struct NeighborsOptions {
  std::string model;
  std::string prompt;
  int64_t k = 5;
  std::string labels;
  bool json = false;
};

std::vector<std::string> split_labels(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

int run_neighbors(const NeighborsOptions& o) {
  InferenceModel m = load_inference_model(o.model);
  T5Tokenizer tok = m.tokenizer ? *m.tokenizer : load_tokenizer_for(o.model);
  set_peft_log_sink([](const std::string&) {});  // the count line would interleave with output
  std::unique_ptr<PeftMethod> method = load_peft(o.prompt, *m.model);
  set_peft_log_sink(nullptr);
  const auto* pt = dynamic_cast<const PromptTuning*>(method.get());
  SP_CHECK(pt != nullptr, "[neighbors] ", o.prompt, " holds a ", method->name(),
           " method, not a prompt_tuning prompt");
  const std::vector<std::string> labels = split_labels(o.labels);
  std::vector<std::vector<int64_t>> label_pieces;
  for (const auto& l : labels) {
    std::vector<int64_t> ids;
    for (int64_t id : tok.encode(l, /*add_eos=*/false))
      if (tok.id_to_piece(id) != "\xE2\x96\x81") ids.push_back(id);
    label_pieces.push_back(ids);
  }
  const Tensor& prompts = pt->prompt();  // [P, p, D]
  const int64_t P = prompts.size(0), p = prompts.size(1);
  nlohmann::json all = nlohmann::json::array();
  for (int64_t k = 0; k < P; ++k) {
    auto nn = nearest_neighbors(prompts.select(0, k), m.model->input_embedding(), o.k,
                                tok.vocab_size());
    for (int64_t i = 0; i < p; ++i) {
      std::vector<std::string> present;
      for (size_t l = 0; l < labels.size(); ++l) {
        bool hit = false;
        for (const Neighbor& n : nn[i])
          for (int64_t id : label_pieces[l]) hit |= n.id == id;
        if (hit) present.push_back(labels[l]);
      }
      if (o.json) {
        nlohmann::json row = {{"prompt", k}, {"position", i}, {"labels", present}};
        for (const Neighbor& n : nn[i])
          row["neighbors"].push_back(
              {{"id", n.id}, {"piece", tok.id_to_piece(n.id)}, {"cosine", n.cosine}});
        std::cout << row.dump() << "\n";
        continue;
      }
      std::cout << (P > 1 ? "prompt " + std::to_string(k) + " " : "") << "position " << i << ":";
      for (const Neighbor& n : nn[i])
        std::cout << "  " << tok.id_to_piece(n.id) << " (" << std::fixed << std::setprecision(3)
                  << n.cosine << ")";
      if (!labels.empty()) {
        std::cout << "  | labels:";
        if (present.empty()) std::cout << " -";
        for (const auto& l : present) std::cout << " " << l;
      }
      std::cout << "\n";
    }
  }
  return 0;
}

std::function<int()> setup_neighbors(CLI::App& sub) {
  auto o = std::make_shared<NeighborsOptions>();
  sub.add_option("--model", o->model, "Checkpoint directory (config.json, weights, spiece.model)")
      ->required();
  sub.add_option("--prompt", o->prompt, "Prompt directory written by prompt tuning")->required();
  sub.add_option("-k", o->k, "Neighbours per position")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--labels", o->labels, "Class labels to look for, comma-separated");
  sub.add_flag("--json", o->json, "One JSON line per position");
  return [o] { return run_neighbors(*o); };
}

}  // namespace

SP_REGISTER_COMMAND(neighbors, "Nearest vocabulary pieces of each prompt vector (cosine)",
                    setup_neighbors);

}  // namespace sp::cli
