#include "experiments/inference/inference.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "autograd/grad_mode.h"
#include "models/t5/checkpoint.h"
#include "tensor/error.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

// ids: the tokens of text, each checked against the model's vocabulary (a tokenizer with
// more pieces than the embedding has rows is a mismatched checkpoint, not a crash).
std::vector<int64_t> encode_field(const JsonlRecord& r, const char* key,
                                  const T5Tokenizer* tokenizer, int64_t vocab_size) {
  const std::string text = r.string_field(key);
  if (!tokenizer)
    r.fail(str_cat("\"", key, "\" is text, but the model directory has no spiece.model to ",
                   "tokenize it (give token ids instead)"));
  std::vector<int64_t> ids = tokenizer->encode(text);
  for (int64_t id : ids)
    if (id >= vocab_size)
      r.fail(str_cat("\"", key, "\" tokenizes to id ", id, ", outside the model's vocabulary [0, ",
                     vocab_size, ")"));
  return ids;
}

// Example indices in batches of at most batch_size, similar lengths together.
std::vector<std::vector<size_t>> make_batches(const std::vector<int64_t>& lengths,
                                              int64_t batch_size) {
  SP_CHECK(batch_size >= 1, "[inference] batch size must be >= 1, got ", batch_size);
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return lengths[a] < lengths[b]; });
  std::vector<std::vector<size_t>> batches;
  for (size_t i = 0; i < order.size(); i += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(order.size(), i + static_cast<size_t>(batch_size));
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i),
                         order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return batches;
}

}  // namespace

InferenceModel load_inference_model(const std::string& dir, DType dtype, Device device) {
  SP_CHECK(dtype == DType::f32 || dtype == DType::bf16,
           "[inference] dtype must be f32 or bf16, got ", dtype_name(dtype));
  SP_CHECK(fs::is_directory(dir), "[inference] model directory ", dir, " does not exist");
  InferenceModel m;
  m.dir = dir;
  T5LoadOptions options;
  options.dtype = dtype;
  m.model = load_t5(dir, options);
  if (!device.is_cpu()) m.model->to(device);
  m.model->eval();
  if (fs::exists(fs::path(dir) / "spiece.model"))
    m.tokenizer = T5Tokenizer::load((fs::path(dir) / "spiece.model").string());
  return m;
}

T5Tokenizer load_tokenizer_for(const std::string& path) {
  if (fs::is_regular_file(path)) return T5Tokenizer::load(path);
  SP_CHECK(fs::is_directory(path), "[tokenize] ", path, " does not exist");
  const fs::path model = fs::path(path) / "spiece.model";
  SP_CHECK(fs::exists(model), "[tokenize] ", path, " has no spiece.model");
  return T5Tokenizer::load(model.string());
}

std::vector<int64_t> input_ids_of(const JsonlRecord& r, const T5Tokenizer* tokenizer,
                                  int64_t vocab_size) {
  const bool ids = r.has("input_ids"), text = r.has("inputs");
  if (ids && text) r.fail("expected one of \"input_ids\" and \"inputs\", got both");
  if (ids) return r.ids_field("input_ids", vocab_size);
  if (text) return encode_field(r, "inputs", tokenizer, vocab_size);
  r.fail("expected \"input_ids\" or \"inputs\"");
}

ScoreExample score_example_of(const JsonlRecord& r, const T5Tokenizer* tokenizer,
                              int64_t vocab_size) {
  ScoreExample e;
  e.input_ids = input_ids_of(r, tokenizer, vocab_size);
  const bool ids = r.has("labels"), text = r.has("targets");
  if (ids && text) r.fail("expected one of \"labels\" and \"targets\", got both");
  if (ids) {
    e.labels = r.ids_field("labels", vocab_size, -100);
    if (std::all_of(e.labels.begin(), e.labels.end(), [](int64_t l) { return l == -100; }))
      r.fail("expected \"labels\" to hold at least one token id that is not -100");
  } else if (text) {
    e.labels = encode_field(r, "targets", tokenizer, vocab_size);
  } else {
    r.fail("expected \"labels\" or \"targets\"");
  }
  return e;
}

// rows: B rows of ids -> ids [B, L] padded with pad_id, mask [B, L], L = the longest row.
PaddedBatch pad_batch(const std::vector<const std::vector<int64_t>*>& rows, int64_t pad_id) {
  SP_CHECK(!rows.empty(), "[inference] empty batch");
  size_t len = 0;
  for (const auto* r : rows) len = std::max(len, r->size());
  const int64_t B = static_cast<int64_t>(rows.size()), L = static_cast<int64_t>(len);
  std::vector<int64_t> ids(rows.size() * len, pad_id), mask(rows.size() * len, 0);
  for (size_t b = 0; b < rows.size(); ++b) {
    std::copy(rows[b]->begin(), rows[b]->end(), ids.begin() + static_cast<std::ptrdiff_t>(b * len));
    std::fill_n(mask.begin() + static_cast<std::ptrdiff_t>(b * len), rows[b]->size(), 1);
  }
  return {Tensor::from_vector(ids, Shape{B, L}), Tensor::from_vector(mask, Shape{B, L})};
}

std::vector<SequenceScore> score_examples(const T5ForConditionalGeneration& model,
                                          const std::vector<ScoreExample>& examples,
                                          int64_t batch_size) {
  std::vector<int64_t> lengths;
  for (const ScoreExample& e : examples)
    lengths.push_back(static_cast<int64_t>(e.input_ids.size()));
  std::vector<SequenceScore> out(examples.size());
  NoGradGuard no_grad;
  for (const std::vector<size_t>& batch : make_batches(lengths, batch_size)) {
    std::vector<const std::vector<int64_t>*> inputs, labels;
    for (size_t i : batch) {
      inputs.push_back(&examples[i].input_ids);
      labels.push_back(&examples[i].labels);
    }
    const PaddedBatch in = pad_batch(inputs, model.config().pad_token_id);
    // Padded label positions are ignored; the decoder is causal, so they do not change
    // the positions before them.
    const PaddedBatch lab = pad_batch(labels, -100);
    std::vector<SequenceScore> s = score_sequences(model, in.ids, in.mask, lab.ids);
    for (size_t j = 0; j < batch.size(); ++j) out[batch[j]] = s[j];
  }
  return out;
}

std::vector<std::vector<int64_t>> generate_examples(const T5ForConditionalGeneration& model,
                                                    const std::vector<std::vector<int64_t>>& inputs,
                                                    int64_t batch_size, int64_t max_new_tokens) {
  std::vector<int64_t> lengths;
  for (const auto& ids : inputs) lengths.push_back(static_cast<int64_t>(ids.size()));
  std::vector<std::vector<int64_t>> out(inputs.size());
  GenerateOptions options;
  options.max_new_tokens = max_new_tokens;
  for (const std::vector<size_t>& batch : make_batches(lengths, batch_size)) {
    std::vector<const std::vector<int64_t>*> rows;
    for (size_t i : batch) rows.push_back(&inputs[i]);
    const PaddedBatch in = pad_batch(rows, model.config().pad_token_id);
    std::vector<std::vector<int64_t>> g = greedy_generate(model, in.ids, in.mask, options);
    for (size_t j = 0; j < batch.size(); ++j) out[batch[j]] = std::move(g[j]);
  }
  return out;
}

std::string score_json(const SequenceScore& s) {
  nlohmann::ordered_json j;
  j["loss"] = s.loss();
  j["logprob"] = s.logprob;
  j["num_tokens"] = s.num_tokens;
  return j.dump();
}

std::string ids_json(const std::vector<int64_t>& ids) { return nlohmann::json(ids).dump(); }

std::string generate_json(const std::vector<int64_t>& ids, const T5Tokenizer* tokenizer) {
  nlohmann::ordered_json j;
  j["output_ids"] = ids;
  if (tokenizer) {
    DecodeOptions d;
    d.skip_special_tokens = true;
    d.stop_at_eos = true;
    j["text"] = tokenizer->decode(ids, d);
  }
  // Byte-fallback pieces can decode to invalid UTF-8: replace rather than throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int64_t score_jsonl(const InferenceModel& m, std::istream& in, const std::string& source,
                    std::ostream& out, const JsonlRunOptions& options) {
  const T5Tokenizer* tok = m.tokenizer ? &*m.tokenizer : nullptr;
  const int64_t vocab = m.model->config().vocab_size;
  std::vector<ScoreExample> examples;
  for (const JsonlRecord& r : read_jsonl(in, source))
    examples.push_back(score_example_of(r, tok, vocab));
  for (const SequenceScore& s : score_examples(*m.model, examples, options.batch_size))
    out << score_json(s) << '\n';
  out.flush();
  return static_cast<int64_t>(examples.size());
}

int64_t generate_jsonl(const InferenceModel& m, std::istream& in, const std::string& source,
                       std::ostream& out, const JsonlRunOptions& options) {
  SP_CHECK(options.max_new_tokens >= 1, "[generate] max new tokens must be >= 1, got ",
           options.max_new_tokens);
  const T5Tokenizer* tok = m.tokenizer ? &*m.tokenizer : nullptr;
  const int64_t vocab = m.model->config().vocab_size;
  std::vector<std::vector<int64_t>> inputs;
  for (const JsonlRecord& r : read_jsonl(in, source)) inputs.push_back(input_ids_of(r, tok, vocab));
  for (const auto& ids :
       generate_examples(*m.model, inputs, options.batch_size, options.max_new_tokens))
    out << generate_json(ids, tok) << '\n';
  out.flush();
  return static_cast<int64_t>(inputs.size());
}

}  // namespace sp
