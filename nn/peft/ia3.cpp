#include "nn/peft/ia3.h"

#include <algorithm>

#include "autograd/ops.h"
#include "tensor/kernels.h"

namespace sp {

Ia3Adapter::Ia3Adapter(int64_t in, int64_t out, bool feedforward_)
    : l(Tensor::ones(feedforward_ ? Shape{1, in} : Shape{out, 1})), feedforward(feedforward_) {
  l.requires_grad_(true);
}

Tensor Ia3Adapter::forward(const Tensor& x, const Linear& base) const {
  if (merged) return base.base_forward(x);
  Tensor scale = l.reshape(Shape{l.numel()});  // broadcasts over [..., n]
  auto scaled = [&](const Tensor& t) {
    Tensor t32 = t.dtype() == scale.dtype() ? t : cast(t, scale.dtype());
    Tensor r = t32 * scale;
    return r.dtype() == t.dtype() ? r : cast(r, t.dtype());
  };
  if (feedforward) return base.base_forward(scaled(x));
  return scaled(base.base_forward(x));
}

std::vector<PeftSetting> Ia3::settings() {
  return {
      {"target_modules", nlohmann::json::array({"k", "v", "wo"}),
       "linears to rescale, matched on the last components of their names (PEFT's convention)"},
      {"target_regex", "",
       "a regex the whole module name must match; overrides target_modules when set"},
      {"feedforward_modules", nlohmann::json::array({"wo"}),
       "targets whose input (the feed-forward activation) is scaled instead of their output"},
  };
}

Ia3::Ia3(const nlohmann::json& s)
    : PeftMethod(s),
      targets_(TargetModules::from_settings(s.at("target_modules"), s.at("target_regex"),
                                            "[peft:ia3]")) {
  const nlohmann::json& ff = s.at("feedforward_modules");
  // An empty list is allowed here: no target is then a feed-forward one.
  if (!ff.empty())
    feedforward_ = TargetModules::from_settings(ff, "", "[peft:ia3] feedforward_modules:");
}

void Ia3::attach(PeftHost& host) {
  SP_CHECK(adapters_.empty(), "[peft:ia3] already attached");
  Module& model = host.module();
  const auto chosen = select_linears(model, targets_, "[peft:ia3]");
  check_free(chosen, "[peft:ia3]");
  // An entry that names no linear at all is a typo that would scale a target's output
  // instead of its input (an entry naming linears outside target_modules is allowed: the
  // default "wo" with targets [k, v]).
  const auto all = named_linears(model);
  for (const std::string& entry : feedforward_.names) {
    const TargetModules one{{entry}, ""};
    SP_CHECK(
        std::any_of(all.begin(), all.end(), [&](const auto& l) { return one.matches(l.first); }),
        "[peft:ia3] feedforward_modules entry '", entry, "' names no linear layer of the model");
  }
  model.requires_grad_(false);
  for (auto& [name, linear] : chosen) {
    const bool ff = !feedforward_.names.empty() && feedforward_.matches(name);
    auto a = std::make_shared<Ia3Adapter>(linear->in_features(), linear->out_features(), ff);
    if (!linear->weight.device().is_cpu())
      a->l = a->l.detach().to(linear->weight.device()).requires_grad_(true);
    linear->adapter = a;
    adapters_.emplace_back(name, a);
    linears_.push_back(linear);
  }
  attached(host);
}

NamedTensors Ia3::trainable() const {
  NamedTensors out;
  for (const auto& [name, a] : adapters_) out.emplace_back(name + ".ia3_l", a->l);
  return out;
}

namespace {
// W: [out, in] <- W * l or W / l with l: [out, 1] or [1, in], in f32, rounded once; an
// output scaling rescales the bias too.
void scale_linear(Linear& linear, const Ia3Adapter& a, bool divide) {
  NoGradGuard no_grad;
  Tensor s = a.l.detach().to(DType::f32);
  auto apply = [&](Tensor& t, const Tensor& factor) {
    Tensor t32 = t.detach().to(DType::f32);
    kernels::copy_(t, divide ? t32 / factor : t32 * factor);
  };
  apply(linear.weight, s);
  if (!a.feedforward && linear.bias.defined()) apply(linear.bias, s.reshape(Shape{s.numel()}));
}
}  // namespace

void Ia3::load_state(const NamedTensors& tensors) {
  load_unmerged(*this, [&] { PeftMethod::load_state(tensors); });
}

void Ia3::merge() {
  if (merged_) return;
  for (size_t i = 0; i < adapters_.size(); ++i) {
    scale_linear(*linears_[i], *adapters_[i].second, false);
    adapters_[i].second->merged = true;
  }
  merged_ = true;
}

void Ia3::unmerge() {
  if (!merged_) return;
  for (size_t i = 0; i < adapters_.size(); ++i) {
    scale_linear(*linears_[i], *adapters_[i].second, true);
    adapters_[i].second->merged = false;
  }
  merged_ = false;
}

SP_REGISTER_PEFT(ia3, "learned scaling of keys, values and the feed-forward activation (IA3)", Ia3);

}  // namespace sp
