#include "nn/peft/peft.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "autograd/grad_mode.h"
#include "models/io/atomic_file.h"
#include "models/io/safetensors.h"
#include "nn/optim/generic.h"
#include "tensor/error.h"
#include "tensor/kernels.h"
#include "tensor/suggest.h"

namespace sp {
namespace {

std::map<std::string, PeftMethodInfo>& registry() {
  static std::map<std::string, PeftMethodInfo> r;
  return r;
}

std::function<void(const std::string&)>& log_sink() {
  static std::function<void(const std::string&)> sink;
  return sink;
}

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const auto& [n, info] : registry()) names.push_back(n);
  return names;
}

// "1,234,567"
std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

const char* json_kind(const nlohmann::json& v) {
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_boolean()) return "a boolean";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "a list";
  if (v.is_object()) return "a mapping";
  return "null";
}

// Whether value has the type default_value declares (see PeftSetting).
bool same_kind(const nlohmann::json& default_value, const nlohmann::json& value) {
  if (default_value.is_null()) return true;
  if (default_value.is_number_integer()) return value.is_number_integer();
  if (default_value.is_number()) return value.is_number();
  if (default_value.is_boolean()) return value.is_boolean();
  if (default_value.is_string()) return value.is_string();
  if (default_value.is_array()) return value.is_array();
  if (default_value.is_object()) return value.is_object();
  return false;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (int i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

}  // namespace

void set_peft_log_sink(std::function<void(const std::string&)> sink) {
  log_sink() = std::move(sink);
}

void peft_log(const std::string& message) {
  if (log_sink())
    log_sink()(message);
  else
    std::cerr << message << "\n";
}

std::string ParameterCount::describe() const {
  std::ostringstream share_text;
  share_text.setf(std::ios::fixed);
  // Four decimals show a prompt's share of an XXL model (0.0037%) and stay readable at 100%.
  share_text.precision(4);
  share_text << share() * 100.0;
  return with_commas(trainable) + " trainable parameters of " + with_commas(total) + " (" +
         share_text.str() + "%)";
}

PeftRegistrar::PeftRegistrar(PeftMethodInfo info) {
  // Registration runs from static initialisers: a duplicate is a build mistake, reported
  // at start-up rather than by a silently shadowed method.
  const std::string name = info.name;
  if (!registry().emplace(name, std::move(info)).second) {
    std::cerr << "[peft] method '" << name << "' is registered twice\n";
    std::abort();
  }
}

std::vector<PeftMethodInfo> peft_methods() {
  std::vector<PeftMethodInfo> out;
  for (const auto& [n, info] : registry()) out.push_back(info);
  return out;
}

const PeftMethodInfo& peft_method(const std::string& name) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& n : method_names()) known += (known.empty() ? "" : ", ") + n;
    SP_CHECK(false, "[peft] unknown method '", name, "'", did_you_mean(name, method_names()),
             " (known: ", known, ")");
  }
  return it->second;
}

nlohmann::json resolve_peft_settings(const std::string& method, const nlohmann::json& settings) {
  const PeftMethodInfo& info = peft_method(method);
  const std::string tag = "[peft:" + method + "]";
  SP_CHECK(settings.is_null() || settings.is_object(), tag, " settings must be a mapping, got ",
           json_kind(settings));
  const std::vector<PeftSetting> declared = info.settings();
  std::vector<std::string> keys;
  for (const auto& s : declared) keys.push_back(s.key);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& s : declared) out[s.key] = s.default_value;
  if (settings.is_object()) {
    for (const auto& [key, value] : settings.items()) {
      auto it = std::find_if(declared.begin(), declared.end(),
                             [&](const PeftSetting& s) { return s.key == key; });
      if (it == declared.end()) {
        std::string known;
        for (const auto& k : keys) known += (known.empty() ? "" : ", ") + k;
        SP_CHECK(false, tag, " unknown setting '", key, "'", did_you_mean(key, keys),
                 " (settings: ", known, ")");
      }
      SP_CHECK(same_kind(it->default_value, value), tag, " setting '", key, "' must be ",
               json_kind(it->default_value), " like its default ", it->default_value.dump(),
               ", got ", value.dump(), " (", json_kind(value), ")");
      out[key] = value;
    }
  }
  return out;
}

uint64_t seed_setting(const nlohmann::json& settings, const std::string& method) {
  const nlohmann::json& seed = settings.at("seed");
  // Non-negative integers may be held unsigned (and above INT64_MAX): only signed ones can
  // be negative.
  SP_CHECK(seed.is_number_unsigned() || seed.get<int64_t>() >= 0, "[peft:", method,
           "] setting 'seed' must be >= 0, got ", seed.dump());
  return seed.get<uint64_t>();
}

std::unique_ptr<PeftMethod> make_peft(const std::string& method, const nlohmann::json& settings) {
  nlohmann::json resolved = resolve_peft_settings(method, settings);
  return peft_method(method).make(resolved);
}

void check_peft_size(int64_t value, const std::string& what) {
  SP_CHECK(value >= 1 && value <= kMaxPeftSize, what, " must be in [1, ", kMaxPeftSize, "], got ",
           value);
}

void PeftMethod::save(const std::string& dir) const {
  std::filesystem::create_directories(dir);
  // The tensors first, the config last: an interrupted save over another method's never
  // pairs the new config with the old tensors.
  NamedTensors tensors;
  for (const auto& [n, t] : trainable()) tensors.emplace_back(n, t.detach());
  save_safetensors(dir + "/peft_model.safetensors", tensors);
  nlohmann::json config = {{"method", name()}, {"settings", settings_}};
  write_file_atomic(dir + "/peft_config.json", config.dump(2) + "\n", "[peft:" + name() + "]");
}

void PeftMethod::load_state(const NamedTensors& tensors) {
  const std::string tag = "[peft:" + name() + "]";
  NamedTensors own = trainable();
  std::map<std::string, const Tensor*> given;
  for (const auto& [n, t] : tensors) given[n] = &t;
  std::vector<std::string> missing, unexpected, mismatched;
  std::set<std::string> own_names;
  for (const auto& [n, t] : own) {
    own_names.insert(n);
    auto it = given.find(n);
    if (it == given.end())
      missing.push_back(n);
    else if (it->second->shape() != t.shape())
      mismatched.push_back(n + ": expected " + shape_str(t.shape()) + ", got " +
                           shape_str(it->second->shape()));
  }
  for (const auto& [n, t] : tensors)
    if (!own_names.count(n)) unexpected.push_back(n);
  SP_CHECK(missing.empty() && unexpected.empty() && mismatched.empty(), tag,
           " the tensors do not match the method's parameters:",
           list_name_mismatches(missing, unexpected, mismatched));
  // Converted silently, integers would make a working prompt of the wrong values, and a
  // diverged run's NaN would score every example as wrong without a word.
  for (const auto& [n, t] : own) {
    const Tensor& g = *given[n];
    SP_CHECK(is_floating(g.dtype()), tag, " tensor ", n, " is ", dtype_name(g.dtype()),
             ": a trained tensor must be floating point");
    const int64_t bad = optim::generic::count_non_finite(g);
    SP_CHECK(bad == 0, tag, " tensor ", n, " holds ", bad, " NaN or infinite value",
             bad == 1 ? "" : "s", " of ", g.numel(),
             ": it comes from a run that diverged (or a damaged file)");
  }
  NoGradGuard no_grad;
  for (auto& [n, t] : own) {
    Tensor dst = t.detach();
    kernels::copy_(dst, *given[n]);
  }
}

void PeftMethod::load(const std::string& dir) {
  const std::string path = dir + "/peft_model.safetensors";
  SafetensorsFile f = SafetensorsFile::open(path);
  NamedTensors tensors;
  for (const auto& n : f.names()) tensors.emplace_back(n, f.tensor(n));
  try {
    load_state(tensors);
  } catch (const Error& e) {
    SP_CHECK(false, e.what(), "\n  (loading ", path, ")");
  }
}

ParameterCount PeftMethod::parameter_count(PeftHost& host) const {
  ParameterCount c;
  std::set<const void*> backbone;
  for (const auto& [n, t] : host.module().named_parameters()) {
    backbone.insert(t.storage().get());
    c.total += t.numel();
  }
  // A method's own tensors (a prompt, LoRA factors) are not registered in the backbone;
  // model tuning's are, and count once.
  for (const auto& [n, t] : trainable()) {
    c.trainable += t.numel();
    if (!backbone.count(t.storage().get())) c.total += t.numel();
  }
  return c;
}

void PeftMethod::attached(PeftHost& host) {
  attached_count_ = parameter_count(host);
  peft_log("[peft:" + name() + "] " + attached_count_.describe());
}

std::unique_ptr<PeftMethod> load_peft(const std::string& dir, PeftHost& host) {
  const std::string path = dir + "/peft_config.json";
  std::ifstream in(path);
  if (!in.is_open()) {
    // A model checkpoint given where a tuned PEFT directory belongs: say so.
    const bool model_dir = std::filesystem::exists(std::filesystem::path(dir) / "config.json");
    fail(str_cat("[peft] cannot open ", path,
                 model_dir ? ": this is a model checkpoint (config.json), not a tuned PEFT "
                             "directory; give the one tune writes (its --out's model/)"
                           : " (a tuned PEFT directory: what tune writes to its --out's model/)"));
  }
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    SP_CHECK(false, "[peft] ", path, " is not valid JSON: ", parse_error_text(e));
  }
  SP_CHECK(config.is_object() && config.contains("method") && config["method"].is_string(),
           "[peft] ", path, " has no \"method\" string");
  nlohmann::json settings =
      config.contains("settings") ? config["settings"] : nlohmann::json::object();
  std::unique_ptr<PeftMethod> method = make_peft(config["method"].get<std::string>(), settings);
  method->attach(host);
  method->load(dir);
  return method;
}

std::vector<std::pair<std::string, Linear*>> named_linears(Module& root) {
  std::vector<std::pair<std::string, Linear*>> out;
  for (auto& [n, m] : root.named_modules())
    if (auto* l = dynamic_cast<Linear*>(m)) out.emplace_back(n, l);
  return out;
}

}  // namespace sp
