#pragma once
// Prefix tuning (Li & Liang 2021): p trainable key and value vectors per head in every
// chosen attention layer, which every query attends to (KvHook, peft_host.h). The backbone
// stays frozen.
//
// Two parameterisations:
//   - direct: per layer, "<site>.prefix_key" and "<site>.prefix_value", each [p, H * d_kv]
//     (head h's vectors are columns h * d_kv ...), initialised N(0, init_std) as PEFT's
//     prefix embedding is;
//   - reparameterize: true, Li & Liang's training-time MLP (PEFT's prefix_projection):
//     an embedding E [p, D] and prefix = W2 tanh(W1 E + b1) + b2, W1: [hidden, D],
//     W2: [sites * 2 * H * d_kv, hidden], whose rows are, per site in attention_sites()
//     order, the H * d_kv key columns then the H * d_kv value columns. Names
//     "prefix_mlp.embedding", "prefix_mlp.{0,2}.{weight,bias}"; E ~ N(0, init_std), the
//     linears as torch.nn.Linear's default (uniform +-1/sqrt(fan_in)), seeded.
//     Each layer's hook computes tanh(W1 E + b1) and its own rows of W2 in every forward,
//     so the MLP is trained through all sites at once.
//
// merge() evaluates the MLP once and replaces it with the direct prefixes it produces:
// the outputs stay the same (up to float rounding) and inference pays no MLP. save() does
// this on the fly when merge_on_save is true (the default): the directory then holds the
// direct prefixes and settings with reparameterize: false, so load_peft() gives the
// MLP-free model. Set merge_on_save: false to keep the MLP in the saved state (to resume
// training with it).
//
// These are Li & Liang's semantics (every chosen layer has its own prefix, the encoder's
// and the cross-attention's included), not Hugging Face PEFT's for T5, which prefixes
// only the decoder's self-attention; there is no converter between the two.
//
// Where the prefix sits: after the projections and after the KV cache, so in incremental
// decoding the cache holds only real positions and the prefix is prepended at each step
// (models/t5/attention.h); the position bias gives the prefix columns zeros (no relative
// position, never masked), in training and in greedy_generate alike.
//
// Settings: length (p, 20), attention (which layers: any of "encoder_self",
// "decoder_self", "decoder_cross"; default all three), reparameterize (false), hidden
// (512), init_std (1.0), merge_on_save (true), seed (0).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/peft/peft.h"

namespace sp {

struct PrefixMlp;
class PrefixKvHook;

class PrefixTuning : public PeftMethod {
 public:
  static std::vector<PeftSetting> settings();
  explicit PrefixTuning(const nlohmann::json& settings);
  ~PrefixTuning() override;
  std::string name() const override { return "prefix_tuning"; }
  void attach(PeftHost& host) override;
  NamedTensors trainable() const override;
  void save(const std::string& dir) const override;

  // Replaces the MLP by the direct prefixes it computes now (no-op when direct).
  void merge();
  bool reparameterized() const { return mlp_ != nullptr; }
  int64_t length() const { return length_; }
  // The final prefixes of every hooked layer: "<site>.prefix_key" / ".prefix_value",
  // [p, H * d_kv] f32, outside the graph (computed through the MLP when there is one).
  NamedTensors prefixes() const;

 private:
  struct Site {
    std::string name;
    int64_t num_heads;
    int64_t d_kv;
    std::shared_ptr<PrefixKvHook> hook;
    std::function<void(std::shared_ptr<const KvHook>)> set_kv_hook;
  };
  int64_t length_;
  bool self_encoder_, self_decoder_, cross_decoder_;
  bool reparameterize_;
  int64_t hidden_;
  double init_std_;
  bool merge_on_save_;
  uint64_t seed_;
  std::vector<Site> sites_;
  std::shared_ptr<PrefixMlp> mlp_;
};

}  // namespace sp
