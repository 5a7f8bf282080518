#include "nn/peft/hf_peft_format.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "autograd/grad_mode.h"
#include "models/io/atomic_file.h"
#include "models/io/safetensors.h"
#include "tensor/error.h"
#include "tensor/suggest.h"

namespace sp {
namespace {

std::vector<HfPeftConverter>& converters() {
  static std::vector<HfPeftConverter> c;
  return c;
}

const HfPeftConverter& find_converter(const char* what, std::string_view value, bool by_type) {
  std::vector<std::string> known;
  for (const auto& c : converters()) {
    const std::string& key = by_type ? c.peft_type : c.method;
    if (key == value) return c;
    known.push_back(key);
  }
  std::string list;
  for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
  SP_CHECK(false, "[hf_peft] no Hugging Face PEFT converter for ", what, " '", value, "'",
           did_you_mean(value, known), " (known: ", list, ")");
  std::abort();
}

}  // namespace

HfPeftRegistrar::HfPeftRegistrar(HfPeftConverter converter) {
  converters().push_back(std::move(converter));
}

const HfPeftConverter& hf_peft_converter_for_method(std::string_view method) {
  return find_converter("method", method, false);
}

const HfPeftConverter& hf_peft_converter_for_type(std::string_view peft_type) {
  return find_converter("peft_type", peft_type, true);
}

HfPeftConfig::HfPeftConfig(const nlohmann::json& config, const std::string& method,
                           const std::string& peft_type, std::string display)
    : config_(config),
      tag_("[hf_peft:" + method + "] adapter_config.json:"),
      display_(std::move(display)) {
  SP_CHECK(config_.is_object(), tag_, " expected a JSON object");
  SP_CHECK(get("peft_type") == peft_type, tag_, " peft_type is ", get("peft_type").dump(),
           ", expected \"", peft_type, "\"");
}

nlohmann::json HfPeftConfig::get(const char* key) const {
  return config_.contains(key) ? config_.at(key) : nlohmann::json();
}

void HfPeftConfig::refuse(const char* key, bool present, const char* what) const {
  SP_CHECK(!present, tag_, " ", key, " = ", get(key).dump(), ": ", what,
           " is not supported by softprompt's ", display_);
}

void HfPeftConfig::refuse_if_set(const char* key, const char* what) const {
  refuse(key, !get(key).is_null(), what);
}

void HfPeftConfig::targets_into(nlohmann::json& settings, bool null_ok) const {
  const nlohmann::json t = get("target_modules");
  if (t.is_null() && null_ok) return;
  if (t.is_string()) {
    settings["target_regex"] = t;
    return;
  }
  SP_CHECK(t.is_array(), tag_, " target_modules must be a list or a regex string, got ", t.dump());
  settings["target_modules"] = t;
}

NamedTensors hf_peft_tensors_as_ours(const NamedTensors& tensors) {
  const std::string prefix = kHfPeftPrefix;
  NoGradGuard no_grad;
  NamedTensors out;
  for (const auto& [n, t] : tensors)
    out.emplace_back(n.rfind(prefix, 0) == 0 ? n.substr(prefix.size()) : n,
                     t.dtype() == DType::f32 ? t : t.to(DType::f32));
  return out;
}

HfPeftModelInfo hf_peft_model_info(PeftHost& host) {
  HfPeftModelInfo info;
  info.token_dim = host.model_dim();
  for (const AttentionSite& s : host.attention_sites()) {
    if (!s.is_decoder) ++info.num_layers;
    info.num_attention_heads = s.num_heads;
  }
  return info;
}

void export_hf_peft(const PeftMethod& method, PeftHost& host, const std::string& dir,
                    const std::string& base_model_name_or_path) {
  const HfPeftConverter& c = hf_peft_converter_for_method(method.name());
  HfPeftModelInfo info = hf_peft_model_info(host);
  info.base_model_name_or_path = base_model_name_or_path;
  HfPeftAdapter a = c.to_hf(method, info);
  std::filesystem::create_directories(dir);
  // Two files cannot be replaced in one step. The weights are written in full first (a
  // failure there leaves another adapter in dir as it was); then the old config goes, the
  // weights replace the old ones and the new config is written. An export interrupted
  // between those leaves weights without a config (an import error), never the new weights
  // with the old config's settings (a LoRA alpha, a prompt length).
  AtomicFile weights(dir + "/adapter_model.safetensors", "[hf_peft]");
  write_safetensors(weights, a.tensors);
  const std::string config = dir + "/adapter_config.json";
  std::error_code ec;
  std::filesystem::remove(config, ec);
  SP_CHECK(!ec, "[hf_peft] cannot remove the previous ", config, ": ", ec.message());
  weights.commit();
  write_file_atomic(config, a.config.dump(2), "[hf_peft]");
}

std::unique_ptr<PeftMethod> import_hf_peft(const std::string& dir, PeftHost& host) {
  const std::string path = dir + "/adapter_config.json";
  std::ifstream in(path);
  SP_CHECK(in.is_open(), "[hf_peft] cannot open ", path);
  HfPeftAdapter a;
  try {
    a.config = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    SP_CHECK(false, "[hf_peft] ", path, " is not valid JSON: ", parse_error_text(e));
  }
  SP_CHECK(
      a.config.is_object() && a.config.contains("peft_type") && a.config["peft_type"].is_string(),
      "[hf_peft] ", path, " has no \"peft_type\"");
  const HfPeftConverter& c = hf_peft_converter_for_type(a.config["peft_type"].get<std::string>());
  const std::string weights = dir + "/adapter_model.safetensors";
  SafetensorsFile f = SafetensorsFile::open(weights);
  for (const auto& n : f.names()) {
    // The converters cast to f32, which would pass integers on as a working adapter of
    // the wrong values (PeftMethod::load_state refuses them; it would see f32).
    Tensor t = f.tensor(n);
    SP_CHECK(is_floating(t.dtype()), "[hf_peft] ", weights, ": tensor ", n, " is ", f.info(n).dtype,
             ": a trained adapter tensor must be floating point");
    a.tensors.emplace_back(n, std::move(t));
  }
  auto [settings, tensors] = c.from_hf(a, hf_peft_model_info(host));
  std::unique_ptr<PeftMethod> method = make_peft(c.method, settings);
  method->attach(host);
  method->load_state(tensors);
  return method;
}

}  // namespace sp
