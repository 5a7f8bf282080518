#include "nn/peft/prefix_tuning.h"

#include <cmath>
#include <filesystem>
#include <tuple>

#include "autograd/ops.h"
#include "models/io/atomic_file.h"
#include "models/io/safetensors.h"
#include "nn/init.h"

namespace sp {

// Li & Liang's reparameterisation, shared by every site's hook.
struct PrefixMlp {
  Tensor embedding;  // [p, D]
  Tensor w1, b1;     // [hidden, D], [hidden]
  Tensor w2, b2;     // [rows, hidden], [rows]
};

namespace {

// prefix: [p, H * dk] -> [B, H, p, dk] in x's dtype, in front of x: [B, H, S, dk] on dim 2.
Tensor prepend(const Tensor& prefix, const Tensor& x, int64_t H, int64_t dk) {
  const int64_t p = prefix.size(0), B = x.size(0);
  Tensor pre = prefix.dtype() == x.dtype() ? prefix : cast(prefix, x.dtype());
  pre = pre.reshape(Shape{1, p, H, dk}).transpose(1, 2).expand(Shape{B, H, p, dk});
  return cat({pre, x}, 2);
}

}  // namespace

class PrefixKvHook : public KvHook {
 public:
  // Direct prefixes, each [p, H * dk].
  PrefixKvHook(Tensor key, Tensor value, int64_t H, int64_t dk)
      : key_(std::move(key)), value_(std::move(value)), H_(H), dk_(dk) {}
  // Rows [row, row + 2 * H * dk) of the MLP's output.
  PrefixKvHook(std::shared_ptr<const PrefixMlp> mlp, int64_t row, int64_t H, int64_t dk)
      : mlp_(std::move(mlp)), row_(row), H_(H), dk_(dk) {}

  // k, v: [B, H, S, dk] -> [B, H, p + S, dk]
  std::pair<Tensor, Tensor> forward(const Tensor& k, const Tensor& v) const override {
    SP_CHECK(k.dim() == 4 && k.size(1) == H_ && k.size(3) == dk_, "[peft:prefix_tuning] keys are ",
             describe(k), ", expected [B, ", H_, ", S, ", dk_, "]");
    auto [key, value] = prefixes();
    return {prepend(key, k, H_, dk_), prepend(value, v, H_, dk_)};
  }

  // -> key, value: [p, H * dk]
  std::pair<Tensor, Tensor> prefixes() const {
    if (!mlp_) return {key_, value_};
    const int64_t n = H_ * dk_;
    Tensor h = tanh(linear(mlp_->embedding, mlp_->w1, mlp_->b1));  // [p, hidden]
    Tensor out = linear(h, mlp_->w2.narrow(0, row_, 2 * n), mlp_->b2.narrow(0, row_, 2 * n));
    return {out.narrow(1, 0, n), out.narrow(1, n, n)};  // out: [p, 2 n]
  }

 private:
  Tensor key_, value_;
  std::shared_ptr<const PrefixMlp> mlp_;
  int64_t row_ = 0;
  int64_t H_, dk_;
};

std::vector<PeftSetting> PrefixTuning::settings() {
  return {
      {"length", 20, "p: prefix positions per attention layer"},
      {"attention", nlohmann::json::array({"encoder_self", "decoder_self", "decoder_cross"}),
       "which attention layers get prefixes: encoder_self, decoder_self, decoder_cross"},
      {"reparameterize", false,
       "train through Li & Liang's MLP (embedding -> tanh MLP -> every layer's prefixes)"},
      {"hidden", 512, "the MLP's hidden width (reparameterize only)"},
      {"init_std", 1.0, "std of the normal init of the prefixes (or of the MLP's embedding)"},
      {"merge_on_save", true,
       "save the prefixes the MLP computes instead of the MLP (reparameterize only)"},
      {"seed", 0, "seed of the init"},
  };
}

PrefixTuning::PrefixTuning(const nlohmann::json& s)
    : PeftMethod(s),
      length_(s.at("length").get<int64_t>()),
      self_encoder_(false),
      self_decoder_(false),
      cross_decoder_(false),
      reparameterize_(s.at("reparameterize").get<bool>()),
      hidden_(s.at("hidden").get<int64_t>()),
      init_std_(s.at("init_std").get<double>()),
      merge_on_save_(s.at("merge_on_save").get<bool>()),
      seed_(seed_setting(s, "prefix_tuning")) {
  check_peft_size(length_, "[peft:prefix_tuning] length");
  check_peft_size(hidden_, "[peft:prefix_tuning] hidden");
  SP_CHECK(std::isfinite(init_std_) && init_std_ >= 0,
           "[peft:prefix_tuning] init_std must be >= 0, got ", init_std_);
  const nlohmann::json& which = s.at("attention");
  SP_CHECK(!which.empty(),
           "[peft:prefix_tuning] attention lists no layers; give any of "
           "encoder_self, decoder_self, decoder_cross");
  for (size_t i = 0; i < which.size(); ++i) {
    const std::string w = which[i].is_string() ? which[i].get<std::string>() : which[i].dump();
    if (w == "encoder_self")
      self_encoder_ = true;
    else if (w == "decoder_self")
      self_decoder_ = true;
    else if (w == "decoder_cross")
      cross_decoder_ = true;
    else
      fail(str_cat("[peft:prefix_tuning] attention[", i, "] is ", which[i].dump(),
                   "; expected encoder_self, decoder_self or decoder_cross"));
  }
}

PrefixTuning::~PrefixTuning() = default;

void PrefixTuning::attach(PeftHost& host) {
  SP_CHECK(sites_.empty(), "[peft:prefix_tuning] already attached");
  host.module().requires_grad_(false);
  const Device device = host.input_embedding().device();
  for (AttentionSite& a : host.attention_sites()) {
    const bool chosen = a.is_cross_attention ? cross_decoder_
                        : a.is_decoder       ? self_decoder_
                                             : self_encoder_;
    if (!chosen) continue;
    SP_CHECK(!a.has_kv_hook(), "[peft:prefix_tuning] ", a.name,
             " already has prefixes (another prefix tuning method is attached to the model): "
             "one per model");
    sites_.push_back({a.name, a.num_heads, a.d_kv, nullptr, a.set_kv_hook});
  }
  SP_CHECK(!sites_.empty(), "[peft:prefix_tuning] the model has none of the attention layers ",
           PeftMethod::settings().at("attention").dump());

  Generator gen(seed_);
  auto param = [&](const Shape& shape, double std) {
    Tensor t = Tensor::zeros(shape);
    init::normal_(t, 0, std, &gen);
    if (!device.is_cpu()) t = t.to(device);
    t.requires_grad_(true);
    return t;
  };
  if (reparameterize_) {
    int64_t rows = 0;
    for (const Site& s : sites_) rows += 2 * s.num_heads * s.d_kv;
    const int64_t D = host.model_dim();
    auto mlp = std::make_shared<PrefixMlp>();
    mlp->embedding = param(Shape{length_, D}, init_std_);
    // torch.nn.Linear's default init: weight and bias uniform in +-1/sqrt(fan_in).
    auto uniform = [&](const Shape& shape, int64_t fan_in) {
      Tensor t = Tensor::zeros(shape);
      const double b = 1.0 / std::sqrt(static_cast<double>(fan_in));
      init::uniform_(t, -b, b, &gen);
      if (!device.is_cpu()) t = t.to(device);
      t.requires_grad_(true);
      return t;
    };
    mlp->w1 = uniform(Shape{hidden_, D}, D);
    mlp->b1 = uniform(Shape{hidden_}, D);
    mlp->w2 = uniform(Shape{rows, hidden_}, hidden_);
    mlp->b2 = uniform(Shape{rows}, hidden_);
    mlp_ = mlp;
    int64_t row = 0;
    for (Site& s : sites_) {
      s.hook = std::make_shared<PrefixKvHook>(mlp_, row, s.num_heads, s.d_kv);
      row += 2 * s.num_heads * s.d_kv;
    }
  } else {
    for (Site& s : sites_) {
      const Shape shape{length_, s.num_heads * s.d_kv};
      Tensor key = param(shape, init_std_);
      Tensor value = param(shape, init_std_);
      s.hook = std::make_shared<PrefixKvHook>(key, value, s.num_heads, s.d_kv);
    }
  }
  for (Site& s : sites_) s.set_kv_hook(s.hook);
  attached(host);
}

NamedTensors PrefixTuning::trainable() const {
  NamedTensors out;
  if (mlp_) {
    out.emplace_back("prefix_mlp.embedding", mlp_->embedding);
    out.emplace_back("prefix_mlp.0.weight", mlp_->w1);
    out.emplace_back("prefix_mlp.0.bias", mlp_->b1);
    out.emplace_back("prefix_mlp.2.weight", mlp_->w2);
    out.emplace_back("prefix_mlp.2.bias", mlp_->b2);
    return out;
  }
  for (const Site& s : sites_) {
    auto [key, value] = s.hook->prefixes();
    out.emplace_back(s.name + ".prefix_key", key);
    out.emplace_back(s.name + ".prefix_value", value);
  }
  return out;
}

NamedTensors PrefixTuning::prefixes() const {
  NoGradGuard no_grad;
  NamedTensors out;
  for (const Site& s : sites_) {
    auto [key, value] = s.hook->prefixes();
    out.emplace_back(s.name + ".prefix_key", key.detach().contiguous());
    out.emplace_back(s.name + ".prefix_value", value.detach().contiguous());
  }
  return out;
}

void PrefixTuning::merge() {
  if (!mlp_) return;
  NamedTensors merged = prefixes();
  for (size_t i = 0; i < sites_.size(); ++i) {
    Site& s = sites_[i];
    Tensor key = merged[2 * i].second.clone();
    Tensor value = merged[2 * i + 1].second.clone();
    key.requires_grad_(true);
    value.requires_grad_(true);
    s.hook = std::make_shared<PrefixKvHook>(key, value, s.num_heads, s.d_kv);
    s.set_kv_hook(s.hook);
  }
  mlp_.reset();
}

void PrefixTuning::save(const std::string& dir) const {
  const bool keep_mlp = mlp_ && !merge_on_save_;
  if (keep_mlp || !reparameterize_) {
    PeftMethod::save(dir);
    return;
  }
  // The saved method is the direct one: settings say so, tensors are the final prefixes.
  std::filesystem::create_directories(dir);
  nlohmann::json s = PeftMethod::settings();
  s["reparameterize"] = false;
  nlohmann::json config = {{"method", name()}, {"settings", s}};
  // Tensors first, the config last (as PeftMethod::save): a failed save never pairs a new
  // config with old tensors.
  save_safetensors(dir + "/peft_model.safetensors", prefixes());
  write_file_atomic(dir + "/peft_config.json", config.dump(2) + "\n", "[peft:prefix_tuning]");
}

SP_REGISTER_PEFT(prefix_tuning,
                 "trainable key/value prefixes in every attention layer (Li & Liang 2021)",
                 PrefixTuning);

}  // namespace sp
