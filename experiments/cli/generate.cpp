// `softprompt generate --model DIR --data FILE.jsonl --max-new-tokens N`: greedy decoding,
// one JSON line per example, {"output_ids": [...], "text": "..."} (ids without the start
// token, eos last when generated; text only when the checkpoint has spiece.model).
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "experiments/cli/command.h"
#include "experiments/inference/inference.h"
#include "tensor/error.h"

namespace sp::cli {
namespace {

struct GenerateCliOptions {
  std::string model;
  std::string data;
  std::string dtype = "f32";
  std::string device = "cpu";
  int64_t batch_size = 8;
  int64_t max_new_tokens = 20;
};

int run_generate(const GenerateCliOptions& o) {
  std::ifstream file;
  if (o.data != "-") {
    file.open(o.data);
    SP_CHECK(file.is_open(), "[generate] cannot open ", o.data, ": ", std::strerror(errno));
  }
  std::istream& in = o.data == "-" ? std::cin : file;
  const InferenceModel m = load_inference_model(o.model, dtype_from_name(o.dtype),
                                                cli::device_from_flag("generate", o.device));
  JsonlRunOptions run;
  run.batch_size = o.batch_size;
  run.max_new_tokens = o.max_new_tokens;
  generate_jsonl(m, in, o.data == "-" ? "<stdin>" : o.data, std::cout, run);
  return 0;
}

std::function<int()> setup_generate(CLI::App& sub) {
  auto o = std::make_shared<GenerateCliOptions>();
  sub.add_option("--model", o->model, "Checkpoint directory (config.json, weights, spiece.model)")
      ->required();
  sub.add_option("--data", o->data,
                 "JSON lines (- for stdin): {\"input_ids\": [...]} or {\"inputs\": \"text\"}")
      ->required();
  sub.add_option("--max-new-tokens", o->max_new_tokens, "Stop after this many tokens (or eos)")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  sub.add_option("--dtype", o->dtype, "Compute dtype")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  sub.add_option("--batch-size", o->batch_size, "Examples decoded together")
      ->check(positive())
      ->capture_default_str();
  return [o] { return run_generate(*o); };
}

}  // namespace

SP_REGISTER_COMMAND(generate, "Greedy generation: one JSON line per example", setup_generate);

}  // namespace sp::cli
