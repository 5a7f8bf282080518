#include "nn/peft/prompt_tuning.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tensor/error.h"
#include "tensor/suggest.h"

namespace sp {
namespace {

const std::vector<std::string> kInits = {"class_labels", "sampled_vocab", "random_uniform", "text"};

std::vector<std::vector<int64_t>> id_lists(const nlohmann::json& v, const std::string& key) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& list : v) {
    SP_CHECK(list.is_array() && !list.empty(), "[peft:prompt_tuning] setting '", key,
             "' must be a list of non-empty lists of token ids, got ", v.dump());
    std::vector<int64_t> ids;
    for (const auto& id : list) {
      SP_CHECK(id.is_number_integer(), "[peft:prompt_tuning] setting '", key,
               "' holds a non-integer token id: ", id.dump());
      ids.push_back(id.get<int64_t>());
    }
    out.push_back(std::move(ids));
  }
  return out;
}

std::vector<int64_t> id_list(const nlohmann::json& v, const std::string& key) {
  std::vector<int64_t> ids;
  for (const auto& id : v) {
    SP_CHECK(id.is_number_integer(), "[peft:prompt_tuning] setting '", key,
             "' must be a list of token ids, got ", v.dump());
    ids.push_back(id.get<int64_t>());
  }
  return ids;
}

void check_ids(const std::vector<int64_t>& ids, int64_t vocab, const std::string& key) {
  for (int64_t id : ids)
    SP_CHECK(id >= 0 && id < vocab, "[peft:prompt_tuning] setting '", key, "' holds token id ", id,
             ", outside the model's vocabulary [0, ", vocab, ")");
}

// The input hook: joins the prompt the method trains (shared handle, so optimizer steps
// show up in the next forward).
class PromptInputHook : public InputHook {
 public:
  PromptInputHook(Tensor prompt, PromptPosition position)
      : prompt_(std::move(prompt)), position_(position) {}
  std::pair<Tensor, Tensor> forward(const Tensor& embeds, const Tensor& mask,
                                    const Tensor& task_ids) const override {
    return join_prompt(prompt_, embeds, mask, task_ids, position_);
  }

 private:
  Tensor prompt_;
  PromptPosition position_;
};

}  // namespace

std::vector<PeftSetting> PromptTuning::settings() {
  return {
      {"length", 100, "prompt positions p"},
      {"position", "prefix",
       "prefix (the paper), suffix (after the EOS) or suffix_before_eos (the paper's code's "
       "suffix)"},
      {"init", "class_labels", "class_labels | sampled_vocab | random_uniform | text"},
      {"init_range", 0.5, "random_uniform draws from [-init_range, init_range]"},
      {"vocab_top_n", 5000, "sampled_vocab draws from the N most frequent pieces"},
      {"vocab_ids", nlohmann::json::array(),
       "the vocabulary by frequency, most frequent first (empty: id order)"},
      {"class_label_ids", nlohmann::json::array(), "token ids of each class label"},
      {"init_text_ids", nlohmann::json::array(), "token ids of the init text"},
      {"seed", 0, "seed of the init"},
      {"num_prompts", 1, "prompts held at once (mixed-task batches, ensembles)"},
  };
}

PromptTuning::PromptTuning(const nlohmann::json& s) : PeftMethod(s) {
  length_ = s["length"].get<int64_t>();
  num_prompts_ = s["num_prompts"].get<int64_t>();
  init_ = s["init"].get<std::string>();
  const std::string position = s["position"].get<std::string>();
  check_peft_size(length_, "[peft:prompt_tuning] setting 'length'");
  check_peft_size(num_prompts_, "[peft:prompt_tuning] setting 'num_prompts'");
  const std::vector<std::string> positions = {"prefix", "suffix", "suffix_before_eos"};
  const auto at = std::find(positions.begin(), positions.end(), position);
  SP_CHECK(at != positions.end(),
           "[peft:prompt_tuning] setting 'position' must be prefix, suffix or suffix_before_eos, "
           "got '",
           position, "'", did_you_mean(position, positions));
  position_ = static_cast<PromptPosition>(at - positions.begin());
  SP_CHECK(std::find(kInits.begin(), kInits.end(), init_) != kInits.end(),
           "[peft:prompt_tuning] setting 'init' must be one of class_labels, sampled_vocab, "
           "random_uniform, text; got '",
           init_, "'", did_you_mean(init_, kInits));
  SP_CHECK(s["init_range"].get<double>() > 0,
           "[peft:prompt_tuning] setting 'init_range' must be > 0, got ", s["init_range"].dump());
  SP_CHECK(s["vocab_top_n"].get<int64_t>() >= 1,
           "[peft:prompt_tuning] setting 'vocab_top_n' must be >= 1, got ",
           s["vocab_top_n"].get<int64_t>());
  // Parse now so a malformed list or seed fails at make_peft, before any model is loaded.
  seed_setting(s, "prompt_tuning");
  id_lists(s["class_label_ids"], "class_label_ids");
  id_list(s["vocab_ids"], "vocab_ids");
  SP_CHECK(init_ != "text" || !s["init_text_ids"].empty(),
           "[peft:prompt_tuning] init 'text' needs the setting 'init_text_ids' (the text's "
           "token ids)");
  id_list(s["init_text_ids"], "init_text_ids");
}

Tensor PromptTuning::initial_prompt(const Tensor& embedding) {
  const nlohmann::json& s = PeftMethod::settings();
  const int64_t V = embedding.size(0), D = embedding.size(1);
  const int64_t p = length_, P = num_prompts_;
  init_ids_.assign(P, std::vector<int64_t>(p, -1));
  if (init_ == "random_uniform") {
    const double r = s["init_range"].get<double>();
    Generator gen(seed_setting(s, "prompt_tuning"));
    return uniform(Shape{P, p, D}, -r, r, DType::f32, &gen);
  }

  // The sampling population: the N most frequent pieces.
  std::vector<int64_t> ranked = id_list(s["vocab_ids"], "vocab_ids");
  if (ranked.empty()) {
    ranked.resize(V);
    std::iota(ranked.begin(), ranked.end(), 0);
  }
  check_ids(ranked, V, "vocab_ids");
  const int64_t top_n =
      std::min<int64_t>(s["vocab_top_n"].get<int64_t>(), static_cast<int64_t>(ranked.size()));
  ranked.resize(top_n);
  std::mt19937_64 rng(seed_setting(s, "prompt_tuning"));
  // n draws from the population: distinct (a partial Fisher-Yates shuffle) when n <= N,
  // independent otherwise. mt19937_64's output is fixed by the standard (unlike the
  // std:: distributions), so a seed gives the same prompt everywhere; the modulo's bias is
  // below 2^-49 for any vocabulary.
  auto sample = [&](int64_t n) {
    std::vector<int64_t> out;
    if (n <= top_n) {
      std::vector<int64_t> pool = ranked;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t j = i + static_cast<int64_t>(rng() % static_cast<uint64_t>(top_n - i));
        std::swap(pool[i], pool[j]);
        out.push_back(pool[i]);
      }
    } else {
      for (int64_t i = 0; i < n; ++i) out.push_back(ranked[rng() % static_cast<uint64_t>(top_n)]);
    }
    return out;
  };

  NoGradGuard no_grad;
  Tensor table = cast(embedding.detach(), DType::f32);   // [V, D], on the model's device
  auto rows_of = [&](const std::vector<int64_t>& ids) {  // [n, D]
    return index_select(table, 0, Tensor::from_vector(ids).to(table.device()));
  };
  std::vector<Tensor> label_rows;  // [D] each: the averaged label embeddings
  std::vector<int64_t> text;
  if (init_ == "class_labels") {
    std::vector<std::vector<int64_t>> labels = id_lists(s["class_label_ids"], "class_label_ids");
    if (labels.empty())
      peft_log(
          "[peft:prompt_tuning] init class_labels without class_label_ids (a task "
          "without class labels): using sampled_vocab");
    if (static_cast<int64_t>(labels.size()) > p) {
      peft_log("[peft:prompt_tuning] " + std::to_string(labels.size()) +
               " class labels for a prompt of length " + std::to_string(p) + ": the last " +
               std::to_string(labels.size() - p) + " are dropped");
      labels.resize(p);
    }
    for (const auto& ids : labels) {
      check_ids(ids, V, "class_label_ids");
      label_rows.push_back(mean(rows_of(ids), {0}));
    }
  } else if (init_ == "text") {
    const std::vector<int64_t> ids = id_list(s["init_text_ids"], "init_text_ids");
    check_ids(ids, V, "init_text_ids");
    for (int64_t i = 0; i < p; ++i) text.push_back(ids[i % ids.size()]);
  }

  std::vector<Tensor> prompts;
  for (int64_t k = 0; k < P; ++k) {
    const int64_t fixed = static_cast<int64_t>(label_rows.size());
    std::vector<int64_t> ids = init_ == "text" ? text : sample(p - fixed);
    std::vector<Tensor> rows;
    for (const Tensor& r : label_rows) rows.push_back(r.unsqueeze(0));
    if (!ids.empty()) rows.push_back(rows_of(ids));
    for (size_t i = 0; i < ids.size(); ++i) init_ids_[k][fixed + i] = ids[i];
    prompts.push_back(cat(rows, 0).unsqueeze(0));  // [1, p, D]
  }
  return cat(prompts, 0).contiguous();
}

void PromptTuning::attach(PeftHost& host) {
  SP_CHECK(!prompt_.defined(), "[peft:prompt_tuning] attach() runs once per method object");
  SP_CHECK(!host.has_input_hook(),
           "[peft:prompt_tuning] the model already has a prompt (another prompt tuning method "
           "is attached to it): one per model");
  host.module().requires_grad_(false);
  const Tensor embedding = host.input_embedding();
  SP_CHECK(embedding.dim() == 2 && embedding.size(1) == host.model_dim(),
           "[peft:prompt_tuning] the host's input embedding is ", describe(embedding),
           ", expected [vocab, ", host.model_dim(), "]");
  Tensor p = initial_prompt(embedding);
  if (p.device() != embedding.device()) p = p.to(embedding.device());
  prompt_ = p.detach();
  prompt_.requires_grad_(true);
  host.set_input_hook(std::make_shared<PromptInputHook>(prompt_, position_));
  attached(host);
}

std::pair<Tensor, Tensor> join_prompt(const Tensor& prompts, const Tensor& embeds,
                                      const Tensor& mask, const Tensor& task_ids,
                                      PromptPosition position) {
  SP_CHECK(prompts.dim() == 3, "[prompt_tuning] prompts must be [P, p, D], got ",
           describe(prompts));
  SP_CHECK(embeds.dim() == 3 && embeds.size(2) == prompts.size(2),
           "[prompt_tuning] embeds must be [B, S, ", prompts.size(2), "], got ", describe(embeds));
  const int64_t B = embeds.size(0), S = embeds.size(1), P = prompts.size(0), p = prompts.size(1),
                D = prompts.size(2);
  SP_CHECK(mask.defined() && mask.dim() == 2 && mask.size(0) == B && mask.size(1) == S,
           "[prompt_tuning] mask must be [", B, ", ", S, "], got ", describe(mask));
  Tensor chosen;  // [B, p, D]
  if (task_ids.defined()) {
    SP_CHECK(task_ids.dim() == 1 && task_ids.size(0) == B, "[prompt_tuning] task_ids must be [", B,
             "], got ", describe(task_ids));
    for (int64_t t : task_ids.to_vector<int64_t>())
      SP_CHECK(t >= 0 && t < P, "[prompt_tuning] task id ", t, " is outside [0, ", P,
               "): the method holds ", P, " prompt(s)");
    Tensor idx = task_ids.dtype() == DType::i64 ? task_ids : task_ids.to(DType::i64);
    if (idx.device() != prompts.device()) idx = idx.to(prompts.device());
    chosen = index_select(prompts, 0, idx);
  } else {
    SP_CHECK(P == 1, "[prompt_tuning] the method holds ", P,
             " prompts: the batch needs task_ids to choose one per example");
    chosen = prompts.expand(Shape{B, p, D});
  }
  if (chosen.dtype() != embeds.dtype()) chosen = cast(chosen, embeds.dtype());

  if (position == PromptPosition::prefix) {
    Tensor ones = Tensor::ones(Shape{B, p}, mask.dtype(), mask.device());
    return {cat({chosen, embeds}, 1), cat({ones, mask.detach()}, 1)};
  }
  // Suffix: each example's prompt goes right after its last token (or before it), so its
  // distance to the tokens (the relative position bias) does not depend on the padding.
  const bool before_last = position == PromptPosition::suffix_before_eos;
  const std::vector<double> m = mask.to_vector<double>();
  std::vector<int64_t> index(B * (S + p));
  std::vector<double> new_mask(B * (S + p), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    int64_t len = 0;
    while (len < S && m[b * S + len] != 0) ++len;
    for (int64_t j = len; j < S; ++j)
      SP_CHECK(m[b * S + j] == 0, "[prompt_tuning] a suffix prompt needs right-padded rows; ",
               "row ", b, " of the mask has a token after padding");
    const int64_t start = before_last && len > 0 ? len - 1 : len;  // the prompt's first row
    // Rows of [embeds; prompts] flattened to [B * S + B * p, D].
    for (int64_t j = 0; j < S + p; ++j) {
      int64_t src;
      if (j < start)
        src = b * S + j;
      else if (j < start + p)
        src = B * S + b * p + (j - start);
      else
        src = b * S + (j - p);  // the rest (EOS, padding), moved behind the prompt
      index[b * (S + p) + j] = src;
      new_mask[b * (S + p) + j] = j < len + p ? 1.0 : 0.0;
    }
  }
  Tensor rows = cat({embeds.reshape(Shape{B * S, D}), chosen.reshape(Shape{B * p, D})}, 0);
  Tensor idx = Tensor::from_vector(index, Shape{B * (S + p)});
  if (idx.device() != rows.device()) idx = idx.to(rows.device());
  Tensor joined = index_select(rows, 0, idx).reshape(Shape{B, S + p, D});
  Tensor mask_out = Tensor::from_vector(new_mask, Shape{B, S + p}, mask.dtype());
  if (mask_out.device() != mask.device()) mask_out = mask_out.to(mask.device());
  return {joined, mask_out};
}

SP_REGISTER_PEFT(prompt_tuning, "trainable prompt vectors joined to the encoder input",
                 PromptTuning);

}  // namespace sp
