#pragma once
// Module: a tree of named parameters, buffers and submodules, named as Hugging Face names
// them (`encoder.block.3.layer.0.SelfAttention.q.weight`) so checkpoints map one to one.
//
// Ownership: a module owns its tensors as plain `Tensor` members and registers *pointers*
// to them (and to its submodules), so a Module is neither copyable nor movable; hold models
// by unique_ptr / shared_ptr or as members of another module. `to()` rebinds the member
// handles (new storage in the new dtype/device), so call it before building optimizers or
// anything else that keeps Tensor handles to parameters. load_state_dict copies values into
// the existing storage and keeps the handles.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/tensor.h"

namespace sp {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct LoadStateDictResult {
  std::vector<std::string> missing;     // the module has it, the state dict does not
  std::vector<std::string> unexpected;  // the state dict has it, the module does not
  std::vector<std::string> mismatched;  // "name: expected [a, b], got [c, d]"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
};

// The body of a strict-loading error: "\n  2 missing:\n    a\n    b" per non-empty list.
std::string list_name_mismatches(const std::vector<std::string>& missing,
                                 const std::vector<std::string>& unexpected,
                                 const std::vector<std::string>& mismatched);

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = delete;
  Module& operator=(Module&&) = delete;

  // Recursive, dotted names, in registration order (parents' own tensors first).
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  // Calls f on every parameter, recursively, in named_parameters order (no names built).
  void for_each_parameter(const std::function<void(const Tensor&)>& f) const;
  NamedTensors named_buffers() const;
  // "" for this module itself, then every descendant.
  std::vector<std::pair<std::string, Module*>> named_modules();
  // Parameters then buffers (persistent only), as transformers' state_dict orders them
  // per module.
  NamedTensors state_dict() const;
  // Copies values (converting dtype) into the registered tensors; names and shapes must
  // match. strict: throws one sp::Error listing every missing, unexpected and mis-shaped
  // name; otherwise loads what matches and returns the lists.
  LoadStateDictResult load_state_dict(const NamedTensors& state, bool strict = true);

  // Pointers to every registered parameter and defined persistent buffer, in state_dict order
  // (loaders fill them in place; valid while the module lives and registers nothing new).
  std::vector<std::pair<std::string, Tensor*>> tensor_slots();
  // The registered tensor with that dotted name, or nullptr.
  Tensor* find_parameter(const std::string& name);
  Tensor* find_tensor(const std::string& name);  // parameter or buffer

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Floating parameters and buffers move to dtype (when given) and device; integer
  // buffers only move device. requires_grad flags survive.
  void to(Device device, std::optional<DType> dtype = std::nullopt) { convert(device, dtype); }
  void to(DType dtype) { convert(std::nullopt, dtype); }  // each tensor stays on its device

  // Freezes (false) or unfreezes every parameter, recursively.
  void requires_grad_(bool enabled);
  int64_t num_parameters(bool trainable_only = false) const;

 protected:
  // slot must outlive this module (it is a member of the subclass). Returns *slot.
  Tensor& register_parameter(const std::string& name, Tensor* slot, bool requires_grad = true);
  Tensor& register_buffer(const std::string& name, Tensor* slot, bool persistent = true);
  void register_module(const std::string& name, Module* child);

 private:
  struct Slot {
    std::string name;
    Tensor* tensor;
    bool persistent;
  };
  void check_name(const std::string& name) const;
  void convert(std::optional<Device> device, std::optional<DType> dtype);
  void collect(const std::string& prefix, bool params, bool buffers, bool persistent_only,
               NamedTensors& out) const;
  void collect_slots(const std::string& prefix, bool params, bool buffers,
                     std::vector<std::pair<std::string, Tensor*>>& out);

  std::vector<Slot> params_;
  std::vector<Slot> buffers_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
};

}  // namespace sp
