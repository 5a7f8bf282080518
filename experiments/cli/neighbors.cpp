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
#include "experiments/inference/prompt_neighbors.h"
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
  const Tensor& prompts = pt->prompt();  // [P, p, D]
  const bool several = prompts.size(0) > 1;
  for (const PromptPositionNeighbors& row :
       prompt_neighbors(prompts, m.model->input_embedding(), tok, o.k, split_labels(o.labels))) {
    if (o.json) {
      std::cout << row.to_json(tok).dump() << "\n";
      continue;
    }
    std::cout << (several ? "prompt " + std::to_string(row.prompt) + " " : "") << "position "
              << row.position << ":";
    for (const Neighbor& n : row.neighbors)
      std::cout << "  " << tok.id_to_piece(n.id) << " (" << std::fixed << std::setprecision(3)
                << n.cosine << ")";
    if (!o.labels.empty()) {
      std::cout << "  | labels:";
      if (row.labels.empty()) std::cout << " -";
      for (const auto& l : row.labels) std::cout << " " << l;
    }
    std::cout << "\n";
  }
  return 0;
}

std::function<int()> setup_neighbors(CLI::App& sub) {
  auto o = std::make_shared<NeighborsOptions>();
  sub.add_option("--model", o->model, "Checkpoint directory (config.json, weights, spiece.model)")
      ->required();
  sub.add_option("--prompt", o->prompt, "Prompt directory written by prompt tuning")->required();
  sub.add_option("-k", o->k, "Neighbours per position")->check(positive())->capture_default_str();
  sub.add_option("--labels", o->labels, "Class labels to look for, comma-separated");
  sub.add_flag("--json", o->json, "One JSON line per position");
  return [o] { return run_neighbors(*o); };
}

}  // namespace

SP_REGISTER_COMMAND(neighbors, "Nearest vocabulary pieces of each prompt vector (cosine)",
                    setup_neighbors);

}  // namespace sp::cli
