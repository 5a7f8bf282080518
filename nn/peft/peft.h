#pragma once
// PeftMethod: a parameter-efficient tuning method, and the registry that finds one by name.
//
// A method is one file in nn/peft/ that registers itself:
//
//   class Ia3 : public PeftMethod {
//    public:
//     static std::vector<PeftSetting> settings();        // its keys, defaults, docs
//     explicit Ia3(const nlohmann::json& settings);      // defaults already merged, validated
//     std::string name() const override { return "ia3"; }
//     void attach(PeftHost& host) override;               // freeze, add parameters, install hooks
//     NamedTensors trainable() const override;
//   };
//   SP_REGISTER_PEFT(ia3, "learned scaling of keys, values and the FF activation", Ia3);
//
// and is made by name with the user's settings:
//
//   auto method = make_peft("prompt_tuning", {{"length", 20}, {"init", "class_labels"}});
//   method->attach(model);                  // model: T5ForConditionalGeneration (a PeftHost)
//   NamedTensors p = method->trainable();   // tensors_of / names_of:
//   experiments/training/trainer.h Adafactor opt(tensors_of(p), names_of(p), ...);
//   method->save("runs/x/prompt");          // peft_config.json + peft_model.safetensors
//   auto again = load_peft("runs/x/prompt", model);   // made, attached and loaded
//
// Frozen means requires_grad false: the backbone gets no gradient buffers, no weight
// gradient matmuls and no optimizer state.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/module.h"
#include "nn/peft/peft_host.h"
#include "tensor/random.h"

namespace sp {

// The largest length, rank, hidden size or prompt count a method accepts: far past any
// useful setting (the paper's longest prompt has 150 positions), and small enough that a
// slip such as 1e12 is refused where the settings are read (a spec's --dry-run included),
// not deep in an allocation.
inline constexpr int64_t kMaxPeftSize = 65536;
// Throws "<what> must be in [1, 65536], got <value>" for a size outside [1, kMaxPeftSize];
// what names the method and the setting: "[peft:lora] rank".
void check_peft_size(int64_t value, const std::string& what);

// One setting a method accepts. The type of the default is the type the value must have
// (an integer default also accepts nothing but integers; a float default accepts both).
struct PeftSetting {
  std::string key;
  nlohmann::json default_value;
  std::string description;
};

// Trainable parameters and their share of the whole model (the paper's Figure 4).
struct ParameterCount {
  int64_t trainable = 0;
  int64_t total = 0;  // backbone plus the method's own parameters
  double share() const { return total > 0 ? static_cast<double>(trainable) / total : 0.0; }
  // "10,240 trainable parameters of 60,516,864 (0.0169%)"
  std::string describe() const;
};

class PeftMethod {
 public:
  virtual ~PeftMethod() = default;

  // The registry name ("prompt_tuning").
  virtual std::string name() const = 0;
  // Freezes the backbone, creates the method's parameters (initialised per its settings)
  // and installs its hooks. Once per method object.
  virtual void attach(PeftHost& host) = 0;
  // The method's trainable parameters, leaf tensors requiring grad, with stable names
  // (the keys save() writes).
  virtual NamedTensors trainable() const = 0;
  // The generators the method draws from in training (LoRA's dropout), by name: a
  // trainer's checkpoint keeps their state so a resumed run draws the same masks.
  virtual std::vector<std::pair<std::string, Generator*>> generators() const { return {}; }
  // The resolved settings (defaults included), as saved in peft_config.json.
  const nlohmann::json& settings() const { return settings_; }

  // DIR/peft_config.json ({"method": name, "settings": {...}}) and
  // DIR/peft_model.safetensors (the tensors of trainable()), each written atomically.
  virtual void save(const std::string& dir) const;
  // Loads the tensors save() wrote into the attached method's parameters; every name and
  // shape must match (the error lists the differences).
  virtual void load(const std::string& dir);
  // The same from tensors in memory (HF PEFT import, ensembles): values are copied into the
  // existing parameters (converting dtype), so optimizers holding them stay valid.
  virtual void load_state(const NamedTensors& tensors);

  // Counted after attach.
  ParameterCount parameter_count(PeftHost& host) const;
  // The count attached() recorded (zero before attach).
  const ParameterCount& attached_count() const { return attached_count_; }

 protected:
  explicit PeftMethod(nlohmann::json settings) : settings_(std::move(settings)) {}
  // Every attach() ends with this: records the parameter count and logs
  // "[peft:<name>] 10,240 trainable parameters of 60,516,864 (0.0169%)".
  void attached(PeftHost& host);

 private:
  nlohmann::json settings_;
  ParameterCount attached_count_;
};

// For methods that fold themselves into the weights (LoRA, IA3): runs load() with m
// unmerged and merges again afterwards when m was merged (also when load() throws), so the
// weights always carry the parameters the method holds.
template <typename Mergeable, typename Load>
void load_unmerged(Mergeable& m, Load&& load) {
  const bool was_merged = m.merged();
  m.unmerge();
  try {
    load();
  } catch (...) {
    if (was_merged) m.merge();
    throw;
  }
  if (was_merged) m.merge();
}

// Where PEFT methods report (parameter counts, init warnings); stderr by default. A null
// sink restores the default.
void set_peft_log_sink(std::function<void(const std::string&)> sink);
void peft_log(const std::string& message);

struct PeftMethodInfo {
  std::string name;
  std::string description;
  std::function<std::vector<PeftSetting>()> settings;
  std::function<std::unique_ptr<PeftMethod>(const nlohmann::json&)> make;
};

// The settings with every default filled in. Throws "[peft:<method>] ..." for an unknown
// method or key (with a did-you-mean) and a value of the wrong type, naming the key.
nlohmann::json resolve_peft_settings(const std::string& method, const nlohmann::json& settings);

// settings["seed"] (resolved, so an integer) as a generator seed. Throws
// "[peft:<method>] setting 'seed' must be >= 0, got -1" for a negative one, which would
// otherwise wrap to 2^64 - 1.
uint64_t seed_setting(const nlohmann::json& settings, const std::string& method);

// A method made from the user's settings (resolved as above); not attached yet.
std::unique_ptr<PeftMethod> make_peft(const std::string& method,
                                      const nlohmann::json& settings = nlohmann::json::object());
// A method saved in dir: made from DIR/peft_config.json, attached to host, loaded.
std::unique_ptr<PeftMethod> load_peft(const std::string& dir, PeftHost& host);

// Every registered method, sorted by name.
std::vector<PeftMethodInfo> peft_methods();
const PeftMethodInfo& peft_method(const std::string& name);  // throws with a did-you-mean

struct PeftRegistrar {
  explicit PeftRegistrar(PeftMethodInfo info);
};

}  // namespace sp

// Registers Class (a PeftMethod with `static std::vector<PeftSetting> settings()` and a
// constructor from the resolved settings json) under the name `id`.
#define SP_REGISTER_PEFT(id, description, Class)                                      \
  static const ::sp::PeftRegistrar sp_peft_registrar_##id(::sp::PeftMethodInfo{       \
      #id, description, [] { return Class::settings(); },                             \
      [](const nlohmann::json& s) -> std::unique_ptr<::sp::PeftMethod> {              \
        return std::make_unique<Class>(s);                                            \
      }})
