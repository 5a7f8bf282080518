// `softprompt peft methods`: the registered PEFT methods and their settings.
// `softprompt peft export --model DIR --adapter DIR --out DIR`: our saved method in Hugging
//   Face PEFT's format (adapter_config.json + adapter_model.safetensors).
// `softprompt peft import --model DIR --hf DIR --out DIR`: the reverse, into our format.
// `softprompt peft forward --model DIR (--adapter DIR | --hf DIR) --data FILE.jsonl`: for
//   each line {"input_ids": [...], "decoder_input_ids": [...]} one line {"logits": [[...]]}
//   (f32, [T, V]) from the model with the method attached (scripts/verify_peft_export.py
//   compares them with PEFT's).
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "experiments/cli/command.h"
#include "experiments/inference/inference.h"
#include "nn/peft/hf_peft_format.h"
#include "tensor/error.h"

namespace sp::cli {
namespace {

struct PeftOptions {
  std::string model;
  std::string adapter;
  std::string hf;
  std::string out;
  std::string base_name;
  std::string data;
};

int run_methods() {
  for (const PeftMethodInfo& m : peft_methods()) {
    std::cout << m.name << ": " << m.description << "\n";
    for (const PeftSetting& s : m.settings())
      std::cout << "  " << s.key << " = " << s.default_value.dump() << "  " << s.description
                << "\n";
  }
  return 0;
}

int run_export(const PeftOptions& o) {
  InferenceModel m = load_inference_model(o.model);
  std::unique_ptr<PeftMethod> method = load_peft(o.adapter, *m.model);
  export_hf_peft(*method, *m.model, o.out, o.base_name);
  std::cout << "wrote " << o.out << "/adapter_config.json and " << o.out
            << "/adapter_model.safetensors\n";
  return 0;
}

int run_import(const PeftOptions& o) {
  InferenceModel m = load_inference_model(o.model);
  std::unique_ptr<PeftMethod> method = import_hf_peft(o.hf, *m.model);
  method->save(o.out);
  std::cout << "wrote " << o.out << "/peft_config.json and " << o.out
            << "/peft_model.safetensors\n";
  return 0;
}

int run_forward(const PeftOptions& o) {
  SP_CHECK(o.adapter.empty() != o.hf.empty(), "[peft forward] give exactly one of --adapter and --hf");
  InferenceModel m = load_inference_model(o.model);
  std::unique_ptr<PeftMethod> method =
      o.hf.empty() ? load_peft(o.adapter, *m.model) : import_hf_peft(o.hf, *m.model);
  std::ifstream in(o.data);
  SP_CHECK(in.is_open(), "[peft forward] cannot open ", o.data, ": ", std::strerror(errno));
  NoGradGuard no_grad;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    nlohmann::json r;
    try {
      r = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      SP_CHECK(false, "[peft forward] ", o.data, ":", n, ": ", parse_error_text(e));
    }
    SP_CHECK(r.contains("input_ids") && r.contains("decoder_input_ids"), "[peft forward] ",
             o.data, ":", n, ": needs input_ids and decoder_input_ids");
    auto ids = r["input_ids"].get<std::vector<int64_t>>();
    auto dec = r["decoder_input_ids"].get<std::vector<int64_t>>();
    T5Inputs x;
    x.input_ids = Tensor::from_vector(ids, Shape{1, static_cast<int64_t>(ids.size())});
    x.decoder_input_ids = Tensor::from_vector(dec, Shape{1, static_cast<int64_t>(dec.size())});
    Tensor logits = m.model->forward(x).logits.select(0, 0);  // [T, V]
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t t = 0; t < logits.size(0); ++t)
      rows.push_back(cast(logits.select(0, t), DType::f32).to_vector<float>());
    std::cout << nlohmann::json{{"logits", rows}}.dump() << "\n";
  }
  return 0;
}

std::function<int()> setup_peft(CLI::App& sub) {
  auto o = std::make_shared<PeftOptions>();
  sub.require_subcommand(1);
  CLI::App* methods = sub.add_subcommand("methods", "List the PEFT methods and their settings");
  CLI::App* ex = sub.add_subcommand("export", "Write a saved method in Hugging Face PEFT's format");
  ex->add_option("--model", o->model, "Checkpoint directory the method was trained on")
      ->required();
  ex->add_option("--adapter", o->adapter, "Our method directory (peft_config.json)")->required();
  ex->add_option("--out", o->out, "Output directory")->required();
  ex->add_option("--base-model-name", o->base_name,
                 "base_model_name_or_path to record (e.g. google/t5-base-lm-adapt)");
  CLI::App* im = sub.add_subcommand("import", "Read a Hugging Face PEFT adapter into our format");
  im->add_option("--model", o->model, "Checkpoint directory of the base model")->required();
  im->add_option("--hf", o->hf, "Directory with adapter_config.json")->required();
  im->add_option("--out", o->out, "Output directory")->required();
  CLI::App* fw = sub.add_subcommand("forward", "Logits of a model with a method attached");
  fw->add_option("--model", o->model, "Checkpoint directory of the base model")->required();
  fw->add_option("--adapter", o->adapter, "Our method directory");
  fw->add_option("--hf", o->hf, "A Hugging Face PEFT adapter directory");
  fw->add_option("--data", o->data, "JSON lines with input_ids and decoder_input_ids")->required();
  return [o, methods, ex, im, fw] {
    if (methods->parsed()) return run_methods();
    if (fw->parsed()) return run_forward(*o);
    if (ex->parsed()) return run_export(*o);
    if (im->parsed()) return run_import(*o);
    return 1;
  };
}

}  // namespace

SP_REGISTER_COMMAND(peft, "PEFT methods: list them, export to / import from Hugging Face PEFT",
                    setup_peft);

}  // namespace sp::cli
