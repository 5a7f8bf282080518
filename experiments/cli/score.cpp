// `softprompt score --model DIR --data FILE.jsonl [--dtype f32|bf16] [--device cpu|cuda[:N]]
// [--batch-size N]`: one JSON line per example, {"loss": <mean token NLL>, "logprob": <sum>,
// "num_tokens": n} (experiments/inference/inference.h has the input format).
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

struct ScoreOptions {
  std::string model;
  std::string data;
  std::string dtype = "f32";
  std::string device = "cpu";
  int64_t batch_size = 8;
};

int run_score(const ScoreOptions& o) {
  std::ifstream file;
  if (o.data != "-") {
    file.open(o.data);
    SP_CHECK(file.is_open(), "[score] cannot open ", o.data, ": ", std::strerror(errno));
  }
  std::istream& in = o.data == "-" ? std::cin : file;
  const InferenceModel m = load_inference_model(o.model, dtype_from_name(o.dtype),
                                                cli::device_from_flag("score", o.device));
  JsonlRunOptions run;
  run.batch_size = o.batch_size;
  score_jsonl(m, in, o.data == "-" ? "<stdin>" : o.data, std::cout, run);
  return 0;
}

std::function<int()> setup_score(CLI::App& sub) {
  auto o = std::make_shared<ScoreOptions>();
  sub.add_option("--model", o->model, "Checkpoint directory (config.json, weights, spiece.model)")
      ->required();
  sub.add_option("--data", o->data,
                 "JSON lines (- for stdin): {\"input_ids\": [...], \"labels\": [...]} or "
                 "{\"inputs\": \"text\", \"targets\": \"text\"}")
      ->required();
  sub.add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  sub.add_option("--dtype", o->dtype, "Compute dtype")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  sub.add_option("--batch-size", o->batch_size, "Examples per forward pass")
      ->check(positive())
      ->capture_default_str();
  return [o] { return run_score(*o); };
}

}  // namespace

SP_REGISTER_COMMAND(score, "Score targets by log-likelihood: one JSON line per example",
                    setup_score);

}  // namespace sp::cli
