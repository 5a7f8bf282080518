#include "nn/optim/optimizer.h"

#include <cmath>
#include <map>
#include <set>

#include "nn/optim/generic.h"
#include "tensor/kernels.h"

namespace sp::optim {

Optimizer::Optimizer(const char* op, std::vector<Tensor> params, std::vector<std::string> names)
    : op_(op), params_(std::move(params)), names_(std::move(names)) {
  SP_CHECK(!params_.empty(), "[", op_, "] got an empty parameter list");
  if (names_.empty())
    for (size_t i = 0; i < params_.size(); ++i) names_.push_back(std::to_string(i));
  SP_CHECK(names_.size() == params_.size(), "[", op_, "] ", names_.size(), " names for ",
           params_.size(), " parameters");
  std::set<std::string> seen;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    const std::string& name = names_[i];
    SP_CHECK(!name.empty() && name != "step", "[", op_, "] parameter ", i,
             " has an empty or reserved name '", name, "'");
    SP_CHECK(seen.insert(name).second, "[", op_, "] duplicate parameter name '", name, "'");
    SP_CHECK(p.defined(), "[", op_, "] parameter '", name, "' is undefined");
    SP_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::bf16 || p.dtype() == DType::f16 ||
                 p.dtype() == DType::f64,
             "[", op_, "] parameter '", name, "' is ", describe(p),
             ": expected f32, bf16, f16 or f64");
    SP_CHECK(p.is_leaf() && p.requires_grad(), "[", op_, "] parameter '", name,
             "' must be a leaf that requires grad");
  }
  state_.resize(params_.size());
}

void Optimizer::step() {
  SP_CHECK(schedule_.has_value(), "[", op_,
           "] step() without a learning rate needs set_schedule()");
  step(schedule_->lr(step_));
}

void Optimizer::step(double lr) {
  SP_CHECK(std::isfinite(lr) && lr >= 0, "[", op_, "] learning rate must be finite and >= 0, got ",
           lr);
  check_step(step_);
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    SP_CHECK(g.device() == p.device(), "[", op_, "] gradient of '", names_[i], "' is on ",
             g.device().str(), " but the parameter is on ", p.device().str());
    if (state_[i].empty())
      for (const StateSlot& s : state_slots(p.shape()))
        state_[i].push_back(Tensor::zeros(s.shape, state_dtype(p.dtype()), p.device()));
    const Tensor work = kernels::contiguous(p);
    const Tensor grad = kernels::contiguous(kernels::cast(g, p.dtype()));
    if (use_generic_path(p))
      update_generic(work, grad, state_[i], lr, step_);
    else
      update(work, grad, state_[i], lr, step_);
    if (work.is_same(p))
      p.storage()->bump_version();  // written in place by the update
    else
      kernels::copy_(p, work);
  }
  ++step_;
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

Tensor Optimizer::state(size_t index, const std::string& slot) const {
  SP_CHECK(index < params_.size(), "[", op_, "] parameter index ", index, " out of range (",
           params_.size(), " parameters)");
  if (state_[index].empty()) return Tensor();
  const std::vector<StateSlot> slots = state_slots(params_[index].shape());
  for (size_t s = 0; s < slots.size(); ++s)
    if (slots[s].name == slot) return state_[index][s];
  return Tensor();
}

StateDict Optimizer::state_dict() const {
  StateDict out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (state_[i].empty()) continue;
    const std::vector<StateSlot> slots = state_slots(params_[i].shape());
    for (size_t s = 0; s < slots.size(); ++s)
      out.emplace_back(names_[i] + "." + slots[s].name, state_[i][s]);
  }
  out.emplace_back("step", Tensor::scalar(static_cast<double>(step_), DType::i64));
  return out;
}

void Optimizer::load_state_dict(const StateDict& state) {
  std::map<std::string, Tensor> entries;
  for (const auto& [key, t] : state) {
    SP_CHECK(entries.emplace(key, t).second, "[", op_, "] state has a duplicate entry '", key, "'");
    SP_CHECK(t.defined(), "[", op_, "] state entry '", key, "' is undefined");
  }
  auto step_it = entries.find("step");
  SP_CHECK(step_it != entries.end(), "[", op_, "] state is missing entry 'step'");
  const Tensor& step_t = step_it->second;
  SP_CHECK(step_t.numel() == 1 && !is_floating(step_t.dtype()) && step_t.dtype() != DType::boolean,
           "[", op_, "] state entry 'step' must be one integer, got ", describe(step_t));
  const auto step = step_t.item<int64_t>();
  SP_CHECK(step >= 0, "[", op_, "] state entry 'step' is negative: ", step);

  std::vector<std::vector<Tensor>> loaded(params_.size());
  size_t used = 1;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::vector<StateSlot> slots = state_slots(params_[i].shape());
    std::vector<const StateSlot*> missing;
    std::vector<Tensor> found;
    for (const StateSlot& s : slots) {
      const std::string key = names_[i] + "." + s.name;
      auto it = entries.find(key);
      if (it == entries.end()) {
        missing.push_back(&s);
        continue;
      }
      const Tensor& t = it->second;
      SP_CHECK(t.shape() == s.shape, "[", op_, "] state entry '", key, "' has shape ", t.shape(),
               ", expected ", s.shape, " for parameter of shape ", params_[i].shape());
      SP_CHECK(is_floating(t.dtype()), "[", op_, "] state entry '", key, "' is ", describe(t),
               ": expected a floating dtype");
      Tensor own = Tensor::empty(s.shape, state_dtype(params_[i].dtype()), params_[i].device());
      kernels::copy_(own, t);
      found.push_back(own);
      ++used;
    }
    if (found.empty()) continue;  // never updated: no state, as before its first gradient
    SP_CHECK(missing.empty(), "[", op_, "] state is missing entry '", names_[i], ".",
             missing.empty() ? std::string() : missing.front()->name, "'");
    loaded[i] = std::move(found);
  }
  if (used != entries.size()) {
    std::set<std::string> known{"step"};
    for (size_t i = 0; i < params_.size(); ++i)
      for (const StateSlot& s : state_slots(params_[i].shape()))
        known.insert(names_[i] + "." + s.name);
    for (const auto& [key, t] : entries)
      SP_CHECK(known.count(key), "[", op_, "] state has an unknown entry '", key,
               "' (no such parameter or slot for this optimizer's configuration)");
  }
  state_ = std::move(loaded);
  step_ = step;
}

}  // namespace sp::optim
