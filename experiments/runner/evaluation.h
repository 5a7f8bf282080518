#pragma once
// Predictions of a (PEFT-hooked) T5 on a task's examples, the way the runner evaluates:
//   greedy               decode up to max_decode_length tokens, as T5 evaluates; a text
//                        that is not a legal label is scored wrong by the task
//   rank_classification  score every label string as the target and pick the most likely
//                        (classification tasks only; free-form tasks fall back to greedy)
// and the ensemble's majority vote over several prompts' predictions (Table 3).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/objectives/example.h"
#include "experiments/tasks/task.h"
#include "models/t5/t5_model.h"

namespace sp {

class T5Tokenizer;

// "Span corruption + sentinel" (Figure 3c): targets start with the first sentinel, as the
// span-corruption checkpoint expects (EvalSettings::target_prefix for such a run).
constexpr const char* kSentinelPrefix = "<extra_id_0> ";

struct EvalSettings {
  std::string method = "greedy";  // greedy | rank_classification
  int64_t batch_size = 32;
  int64_t inputs_length = 512;    // encoder tokens (EOS included) kept per example
  int64_t max_decode_length = 8;  // greedy: generated tokens at most
  // Text the model was trained to emit before the answer ("<extra_id_0> " for the paper's
  // "span corruption + sentinel"): rank classification scores prefix + label; greedy
  // decoding strips it from the front of the decoded text. Other sentinels stay in the
  // text, so a prediction holding one is no label and scores wrong, as in T5's evaluation.
  std::string target_prefix;
};

// One predicted text per example, in order. labels: the task's legal targets (empty for
// free-form tasks). Runs without recording the graph; the caller sets eval mode.
std::vector<std::string> predict_texts(const T5ForConditionalGeneration& model,
                                       const T5Tokenizer& tokenizer,
                                       const std::vector<TaskExample>& examples,
                                       const std::vector<std::string>& labels,
                                       const EvalSettings& settings);

// The same for a prompt ensemble of num_members prompts loaded into model as one
// multi-prompt method (load_prompt_ensemble): every batch runs once for all members (the
// batch replicated per prompt). Returns member_predictions[m][i].
std::vector<std::vector<std::string>> predict_ensemble_texts(
    const T5ForConditionalGeneration& model, int64_t num_members, const T5Tokenizer& tokenizer,
    const std::vector<TaskExample>& examples, const std::vector<std::string>& labels,
    const EvalSettings& settings);

// The text greedy decoding predicts from generated ids: up to the first EOS, pad and unk
// dropped, sentinels kept (a span-corruption model's "<extra_id_0> True <extra_id_1>" is no
// label), spaces trimmed, and target_prefix (spaces aside) taken off its front.
std::string prediction_text(const T5Tokenizer& tokenizer, const std::vector<int64_t>& generated,
                            const std::string& target_prefix);

// A warning for each of labels that greedy decoding (settings.method "greedy") can never
// predict, so that its examples always score wrong: its text does not come back from its
// tokens (a trailing space, characters the vocabulary lacks) or its tokens and EOS, after
// the target prefix, need more than settings.max_decode_length steps. None for rank
// classification. Runs log them before any work.
std::vector<std::string> undecodable_label_warnings(const T5Tokenizer& tokenizer,
                                                    const std::vector<std::string>& labels,
                                                    const EvalSettings& settings,
                                                    const std::string& task);

// The most frequent text among votes; a tie goes to the tied text voted first (so the
// member order, not string order, breaks ties). Throws on an empty list.
std::string majority_vote(const std::vector<std::string>& votes);
// Per example, the majority over members: member_predictions[m][i] is member m's text for
// example i. Throws when the members' lengths differ.
std::vector<std::string> majority_votes(
    const std::vector<std::vector<std::string>>& member_predictions);

// Encodes examples for training: inputs and targets with EOS, cut to the lengths keeping
// EOS last (T5 truncates the same way).
std::vector<Seq2SeqExample> tokenize_examples(const T5Tokenizer& tokenizer,
                                              const std::vector<TaskExample>& examples,
                                              int64_t inputs_length, int64_t targets_length);

// Checks, before any training, that the task reports `metric` (the one that picks the
// best checkpoint) on examples, the split evaluated while training: throws "[run]
// stages.tune.metric '<metric>': task <name> reports <its metrics>" when it does not.
// Scores the examples' own targets, so an unlabelled split fails here too.
void check_eval_metric(const Task& task, const std::vector<TaskExample>& examples,
                       const std::string& metric);

// What a tune stage's evaluations score on, for the trainer's resume check: the split, the
// method, the example count and a SHA-256 of the examples' ids, inputs and targets.
nlohmann::json evaluation_identity(const std::string& split, const std::string& method,
                                   const std::vector<TaskExample>& examples);

// path: one line per example {"id", "prediction", "target"}, written atomically.
void write_predictions(const std::string& path, const std::vector<TaskExample>& examples,
                       const std::vector<std::string>& predictions);

}  // namespace sp
