#pragma once
// Batched scoring and greedy generation over JSON-lines files: the logic behind
// `softprompt score`, `softprompt generate` and `softprompt tokenize`, on streams so tests
// can run it without the binary.
//
// Input lines (score): {"input_ids": [...], "labels": [...]} or {"inputs": "text",
// "targets": "text"} (text needs the checkpoint's spiece.model; eos is appended as the
// tokenizer does); the two spellings may be mixed per field. labels may hold -100 (ignored).
// generate reads the input field only, so a scoring file works for it too.
//
// Output: one JSON line per example, in input order:
//   score:    {"loss": <mean token NLL>, "logprob": <sum of log-probs>, "num_tokens": n}
//   generate: {"output_ids": [...], "text": "..."}  (text only with a tokenizer)
//
// Batches are formed from examples of similar input length (less padding); padding is
// masked, so a result does not depend on the batch it ran in beyond float rounding.
#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "experiments/inference/jsonl.h"
#include "models/t5/generation.h"
#include "models/tokenizer/t5_tokenizer.h"

namespace sp {

// A checkpoint directory: the model, and the tokenizer when dir/spiece.model exists.
struct InferenceModel {
  std::string dir;
  std::unique_ptr<T5ForConditionalGeneration> model;
  std::optional<T5Tokenizer> tokenizer;
};

// Loads dir (config.json + weights) in dtype (f32 or bf16), in eval mode, on device
// (loaded on the host, then moved once; inputs follow the model inside T5's forward).
InferenceModel load_inference_model(const std::string& dir, DType dtype = DType::f32,
                                    Device device = Device::cpu());
// dir/spiece.model, or path itself when it is a file; throws naming dir when there is none.
T5Tokenizer load_tokenizer_for(const std::string& path);

struct ScoreExample {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> labels;  // -100 = ignored
};

// One record -> an example; fails naming the line when a field is missing or wrong, when
// text needs a tokenizer that is absent, or when an id is outside [0, vocab_size).
std::vector<int64_t> input_ids_of(const JsonlRecord& r, const T5Tokenizer* tokenizer,
                                  int64_t vocab_size);
ScoreExample score_example_of(const JsonlRecord& r, const T5Tokenizer* tokenizer,
                              int64_t vocab_size);

// Padded batch: ids right-padded with pad_id, mask 1 on tokens / 0 on padding.
struct PaddedBatch {
  Tensor ids;   // [B, L] i64
  Tensor mask;  // [B, L] i64
};
PaddedBatch pad_batch(const std::vector<const std::vector<int64_t>*>& rows, int64_t pad_id);

// Scores examples in batches of at most batch_size, results in input order.
std::vector<SequenceScore> score_examples(const T5ForConditionalGeneration& model,
                                          const std::vector<ScoreExample>& examples,
                                          int64_t batch_size);
// Greedy outputs per input (without the start token, eos last when generated).
std::vector<std::vector<int64_t>> generate_examples(const T5ForConditionalGeneration& model,
                                                    const std::vector<std::vector<int64_t>>& inputs,
                                                    int64_t batch_size, int64_t max_new_tokens);

// The output lines.
std::string score_json(const SequenceScore& s);
std::string generate_json(const std::vector<int64_t>& ids, const T5Tokenizer* tokenizer);
std::string ids_json(const std::vector<int64_t>& ids);

struct JsonlRunOptions {
  int64_t batch_size = 8;
  int64_t max_new_tokens = 20;  // generate only
};

// Reads every line of in (all of them are validated before any model work), writes one
// line per example to out. source names in in error messages. Returns the examples run.
int64_t score_jsonl(const InferenceModel& m, std::istream& in, const std::string& source,
                    std::ostream& out, const JsonlRunOptions& options = {});
int64_t generate_jsonl(const InferenceModel& m, std::istream& in, const std::string& source,
                       std::ostream& out, const JsonlRunOptions& options = {});

}  // namespace sp
