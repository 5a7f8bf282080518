// `softprompt tokenize --model DIR --text "..."`: the ids of the text (eos included) as a
// JSON array, with T5's conventions (models/tokenizer/t5_tokenizer.h).
#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "experiments/cli/command.h"
#include "experiments/inference/inference.h"

namespace sp::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
};

std::function<int()> setup_tokenize(CLI::App& sub) {
  auto o = std::make_shared<TokenizeOptions>();
  sub.add_option("--model", o->model, "Checkpoint directory with spiece.model (or the file)")
      ->required();
  sub.add_option("--text", o->text, "Text to encode")->required();
  return [o] {
    std::cout << ids_json(load_tokenizer_for(o->model).encode(o->text)) << "\n";
    return 0;
  };
}

}  // namespace

SP_REGISTER_COMMAND(tokenize, "Print the token ids of a text (eos included) as a JSON array",
                    setup_tokenize);

}  // namespace sp::cli
