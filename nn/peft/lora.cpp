#include "nn/peft/lora.h"

#include <cmath>

#include "autograd/ops.h"
#include "nn/init.h"
#include "tensor/kernels.h"

namespace sp {

LoraAdapter::LoraAdapter(int64_t in, int64_t out, int64_t rank, double scale_, double dropout_,
                         std::shared_ptr<Generator> gen)
    : A(Tensor::zeros(Shape{rank, in})),
      B(Tensor::zeros(Shape{out, rank})),
      scale(scale_),
      dropout(dropout_),
      gen_(std::move(gen)) {
  // PEFT: kaiming_uniform_(A, a=sqrt(5)) has gain sqrt(2 / (1 + 5)) and bound
  // gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in); B = 0.
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  init::uniform_(A, -bound, bound, gen_.get());
  A.requires_grad_(true);
  B.requires_grad_(true);
}

Tensor LoraAdapter::forward(const Tensor& x, const Linear& base) const {
  Tensor y = base.base_forward(x);
  if (merged) return y;
  Tensor h = x.dtype() == A.dtype() ? x : cast(x, A.dtype());
  if (dropout > 0) h = sp::dropout(h, dropout, base.is_training(), gen_.get());
  Tensor d = linear(linear(h, A), B);  // [..., rank] -> [..., out]
  if (scale != 1.0) d = d * scale;
  if (d.dtype() == y.dtype()) return y + d;
  // A bf16 base with f32 factors: added in f32 and rounded once, as PEFT (whose bf16 + f32
  // sum promotes to f32 before it casts back).
  return cast(cast(y, d.dtype()) + d, y.dtype());
}

Tensor LoraAdapter::delta_weight() const {
  NoGradGuard no_grad;
  return matmul(B.detach(), A.detach()) * scale;  // [out, rank] @ [rank, in]
}

std::vector<PeftSetting> Lora::settings() {
  return {
      {"rank", 8, "r: the rank of the update B A"},
      {"alpha", 8.0, "the update is scaled by alpha / rank"},
      {"dropout", 0.0, "dropout on the low-rank path's input, in training"},
      {"target_modules", nlohmann::json::array({"q", "v"}),
       "linears to wrap, matched on the last components of their names (PEFT's convention)"},
      {"target_regex", "",
       "a regex the whole module name must match; overrides target_modules when set"},
      {"seed", 0, "seed of A's init and of the dropout masks"},
  };
}

Lora::Lora(const nlohmann::json& s)
    : PeftMethod(s),
      rank_(s.at("rank").get<int64_t>()),
      alpha_(s.at("alpha").get<double>()),
      dropout_(s.at("dropout").get<double>()),
      seed_(seed_setting(s, "lora")),
      targets_(TargetModules::from_settings(s.at("target_modules"), s.at("target_regex"),
                                            "[peft:lora]")) {
  check_peft_size(rank_, "[peft:lora] rank");
  SP_CHECK(std::isfinite(alpha_) && alpha_ > 0, "[peft:lora] alpha must be > 0, got ", alpha_);
  SP_CHECK(dropout_ >= 0 && dropout_ < 1, "[peft:lora] dropout must be in [0, 1), got ", dropout_);
}

void Lora::attach(PeftHost& host) {
  SP_CHECK(adapters_.empty(), "[peft:lora] already attached");
  Module& model = host.module();
  const auto chosen = select_linears(model, targets_, "[peft:lora]");
  check_free(chosen, "[peft:lora]");
  model.requires_grad_(false);
  dropout_gen_ = std::make_shared<Generator>(seed_);
  const double scale = alpha_ / static_cast<double>(rank_);
  for (auto& [name, linear] : chosen) {
    auto a = std::make_shared<LoraAdapter>(linear->in_features(), linear->out_features(), rank_,
                                           scale, dropout_, dropout_gen_);
    if (!linear->weight.device().is_cpu()) {
      a->A = a->A.detach().to(linear->weight.device()).requires_grad_(true);
      a->B = a->B.detach().to(linear->weight.device()).requires_grad_(true);
    }
    linear->adapter = a;
    adapters_.emplace_back(name, a);
    linears_.push_back(linear);
  }
  attached(host);
}

std::vector<std::pair<std::string, Generator*>> Lora::generators() const {
  if (!dropout_gen_ || dropout_ == 0) return {};
  return {{"lora_dropout", dropout_gen_.get()}};
}

NamedTensors Lora::trainable() const {
  NamedTensors out;
  for (const auto& [name, a] : adapters_) {
    out.emplace_back(name + ".lora_A.weight", a->A);
    out.emplace_back(name + ".lora_B.weight", a->B);
  }
  return out;
}

namespace {
// W <- W + sign * delta, computed in f32 and rounded once to W's dtype, in place.
void add_to_weight(Tensor& w, const Tensor& delta, double sign) {
  NoGradGuard no_grad;
  Tensor w32 = w.detach().to(DType::f32);
  Tensor updated = sign > 0 ? w32 + delta.to(w.device()) : w32 - delta.to(w.device());
  kernels::copy_(w, updated);
}
}  // namespace

void Lora::load_state(const NamedTensors& tensors) {
  // A merged W holds the old scale * B A: take it out before the factors change. load_state
  // checks every name and shape before it copies, so a failed load changes no factor.
  load_unmerged(*this, [&] { PeftMethod::load_state(tensors); });
}

void Lora::merge() {
  if (merged_) return;
  for (size_t i = 0; i < adapters_.size(); ++i) {
    add_to_weight(linears_[i]->weight, adapters_[i].second->delta_weight(), +1);
    adapters_[i].second->merged = true;
  }
  merged_ = true;
}

void Lora::unmerge() {
  if (!merged_) return;
  for (size_t i = 0; i < adapters_.size(); ++i) {
    add_to_weight(linears_[i]->weight, adapters_[i].second->delta_weight(), -1);
    adapters_[i].second->merged = false;
  }
  merged_ = false;
}

SP_REGISTER_PEFT(lora, "low-rank updates B A of chosen linears (Hu et al. 2021), as HF PEFT", Lora);

}  // namespace sp
