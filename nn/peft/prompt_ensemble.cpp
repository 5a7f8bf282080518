#include "nn/peft/prompt_ensemble.h"

#include <fstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "models/io/safetensors.h"

namespace sp {
namespace {

nlohmann::json read_config(const std::string& dir) {
  const std::string path = dir + "/peft_config.json";
  std::ifstream in(path);
  SP_CHECK(in.is_open(), "[ensemble] cannot open ", path);
  nlohmann::json c;
  try {
    c = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    SP_CHECK(false, "[ensemble] ", path, " is not valid JSON: ", parse_error_text(e));
  }
  SP_CHECK(c.value("method", "") == "prompt_tuning", "[ensemble] ", dir,
           " does not hold a prompt_tuning prompt (method '", c.value("method", ""), "')");
  return resolve_peft_settings("prompt_tuning", c.value("settings", nlohmann::json::object()));
}

}  // namespace

std::unique_ptr<PromptTuning> load_prompt_ensemble(const std::vector<std::string>& dirs,
                                                   PeftHost& host) {
  SP_CHECK(!dirs.empty(), "[ensemble] no prompt directories");
  const nlohmann::json first = read_config(dirs[0]);
  std::vector<Tensor> prompts;
  for (const std::string& dir : dirs) {
    const nlohmann::json s = read_config(dir);
    for (const char* key : {"length", "position"})
      SP_CHECK(s[key] == first[key], "[ensemble] ", dir, " has ", key, " ", s[key].dump(), ", ",
               dirs[0], " has ", first[key].dump(), ": the prompts must agree");
    SafetensorsFile f = SafetensorsFile::open(dir + "/peft_model.safetensors");
    Tensor p = f.tensor("prompt", DType::f32);
    SP_CHECK(p.dim() == 3 && p.size(1) == first["length"].get<int64_t>() &&
                 p.size(2) == host.model_dim(),
             "[ensemble] ", dir, ": prompt is ", describe(p), ", expected [1, ",
             first["length"].get<int64_t>(), ", ", host.model_dim(), "]");
    // Members are counted by directory (task id n is dirs[n]'s prompt): a directory of a
    // mixed-task run holds one prompt per task, and those are not members of one ensemble.
    SP_CHECK(p.size(0) == 1, "[ensemble] ", dir, " holds ", p.size(0),
             " prompts (a mixed-task run?): an ensemble member is one prompt");
    prompts.push_back(p);
  }
  NoGradGuard no_grad;
  Tensor all = cat(prompts, 0);
  nlohmann::json settings = first;
  settings["num_prompts"] = all.size(0);
  // The init is overwritten right away: the cheapest one avoids needing label ids.
  settings["init"] = "random_uniform";
  auto method = std::make_unique<PromptTuning>(settings);
  method->attach(host);
  method->load_state({{"prompt", all}});
  return method;
}

Tensor replicate_rows(const Tensor& x, int64_t n) {
  SP_CHECK(x.dim() >= 1 && n >= 1, "[ensemble] replicate_rows needs a batch and n >= 1, got ",
           describe(x), " and n = ", n);
  return cat(std::vector<Tensor>(n, x), 0);
}

Tensor ensemble_task_ids(int64_t batch, int64_t n) {
  std::vector<int64_t> ids(batch * n);
  for (int64_t k = 0; k < n; ++k)
    for (int64_t b = 0; b < batch; ++b) ids[k * batch + b] = k;
  return Tensor::from_vector(ids, Shape{batch * n});
}

}  // namespace sp
