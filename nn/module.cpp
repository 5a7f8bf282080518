#include "nn/module.h"

#include <unordered_map>

#include "autograd/grad_mode.h"
#include "tensor/kernels.h"

namespace sp {

std::string list_name_mismatches(const std::vector<std::string>& missing,
                                 const std::vector<std::string>& unexpected,
                                 const std::vector<std::string>& mismatched) {
  std::string msg;
  auto list = [&](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    msg += str_cat("\n  ", names.size(), " ", what, ":");
    for (const auto& n : names) msg += "\n    " + n;
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("mis-shaped", mismatched);
  return msg;
}

namespace {
std::string join(const std::string& prefix, const std::string& name) {
  if (name.empty()) return prefix;
  return prefix.empty() ? name : prefix + "." + name;
}
}  // namespace

void Module::check_name(const std::string& name) const {
  SP_CHECK(!name.empty(), "[Module] empty name");
  auto taken = [&](const std::string& n) {
    for (const Slot& s : params_)
      if (s.name == n) return true;
    for (const Slot& s : buffers_)
      if (s.name == n) return true;
    for (const auto& c : children_)
      if (c.first == n) return true;
    return false;
  };
  SP_CHECK(!taken(name), "[Module] name registered twice: ", name);
}

Tensor& Module::register_parameter(const std::string& name, Tensor* slot, bool requires_grad) {
  check_name(name);
  SP_CHECK(slot != nullptr && slot->defined(), "[Module] parameter ", name, " is undefined");
  if (is_floating(slot->dtype()) && slot->is_leaf()) slot->requires_grad_(requires_grad);
  params_.push_back({name, slot, true});
  return *slot;
}

Tensor& Module::register_buffer(const std::string& name, Tensor* slot, bool persistent) {
  check_name(name);
  SP_CHECK(slot != nullptr, "[Module] buffer ", name, " has no slot");
  buffers_.push_back({name, slot, persistent});
  return *slot;
}

void Module::register_module(const std::string& name, Module* child) {
  check_name(name);
  SP_CHECK(child != nullptr, "[Module] submodule ", name, " is null");
  children_.emplace_back(name, child);
}

void Module::collect(const std::string& prefix, bool params, bool buffers, bool persistent_only,
                     NamedTensors& out) const {
  if (params)
    for (const Slot& s : params_) out.emplace_back(join(prefix, s.name), *s.tensor);
  if (buffers)
    for (const Slot& s : buffers_)
      if (s.tensor->defined() && (s.persistent || !persistent_only))
        out.emplace_back(join(prefix, s.name), *s.tensor);
  for (const auto& [name, child] : children_)
    child->collect(join(prefix, name), params, buffers, persistent_only, out);
}

void Module::collect_slots(const std::string& prefix, bool params, bool buffers,
                           std::vector<std::pair<std::string, Tensor*>>& out) {
  if (params)
    for (Slot& s : params_) out.emplace_back(join(prefix, s.name), s.tensor);
  if (buffers)
    for (Slot& s : buffers_)
      if (s.persistent && s.tensor->defined()) out.emplace_back(join(prefix, s.name), s.tensor);
  for (auto& [name, child] : children_)
    child->collect_slots(join(prefix, name), params, buffers, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, false, false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

void Module::for_each_parameter(const std::function<void(const Tensor&)>& f) const {
  for (const Slot& s : params_) f(*s.tensor);
  for (const auto& [name, child] : children_) child->for_each_parameter(f);
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, true, false, out);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (auto& [name, child] : children_)
    for (auto& [sub, m] : child->named_modules()) out.emplace_back(join(name, sub), m);
  return out;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect("", true, true, true, out);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::tensor_slots() {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect_slots("", true, true, slots);
  return slots;
}

Tensor* Module::find_parameter(const std::string& name) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect_slots("", true, false, slots);
  for (auto& [n, t] : slots)
    if (n == name) return t;
  return nullptr;
}

Tensor* Module::find_tensor(const std::string& name) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect_slots("", true, true, slots);
  for (auto& [n, t] : slots)
    if (n == name) return t;
  return nullptr;
}

LoadStateDictResult Module::load_state_dict(const NamedTensors& state, bool strict) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect_slots("", true, true, slots);
  std::unordered_map<std::string, Tensor*> by_name;
  for (auto& [n, t] : slots) by_name.emplace(n, t);

  LoadStateDictResult r;
  std::unordered_map<std::string, const Tensor*> given;
  for (const auto& [name, t] : state) {
    given.emplace(name, &t);
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      r.unexpected.push_back(name);
    } else if (!t.defined() || !it->second->defined() || t.shape() != it->second->shape()) {
      r.mismatched.push_back(str_cat(
          name, ": expected ", it->second->defined() ? str_cat(it->second->shape()) : "undefined",
          ", got ", t.defined() ? str_cat(t.shape()) : "undefined"));
    }
  }
  for (auto& [n, t] : slots)
    if (!given.count(n)) r.missing.push_back(n);

  if (strict && !r.ok()) {
    fail("[load_state_dict] state dict does not match the module:" +
         list_name_mismatches(r.missing, r.unexpected, r.mismatched));
  }

  NoGradGuard no_grad;
  for (const auto& [name, t] : state) {
    auto it = by_name.find(name);
    if (it == by_name.end() || !t.defined() || t.shape() != it->second->shape()) continue;
    Tensor& dst = *it->second;
    kernels::copy_(dst, t);
  }
  return r;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::convert(std::optional<Device> device, std::optional<DType> dtype) {
  NoGradGuard no_grad;
  auto move = [&](Tensor& t) {
    if (!t.defined()) return;
    const bool rg = t.requires_grad();
    Tensor n = t.detach();
    if (dtype && is_floating(n.dtype()) && n.dtype() != *dtype) n = kernels::cast(n, *dtype);
    if (device && n.device() != *device) n = kernels::to_device(n, *device);
    if (n.is_same(t) && n.dtype() == t.dtype()) return;
    if (rg) n.requires_grad_(true);
    t = n;
  };
  for (Slot& s : params_) move(*s.tensor);
  for (Slot& s : buffers_) move(*s.tensor);
  for (auto& [name, child] : children_) child->convert(device, dtype);
}

void Module::requires_grad_(bool enabled) {
  for (Slot& s : params_)
    if (is_floating(s.tensor->dtype())) s.tensor->requires_grad_(enabled);
  for (auto& [name, child] : children_) child->requires_grad_(enabled);
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (const auto& [name, t] : named_parameters())
    if (!trainable_only || t.requires_grad()) n += t.numel();
  return n;
}

}  // namespace sp
