#include "experiments/runner/evaluation.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>

#include "autograd/grad_mode.h"
#include "experiments/data/sha256.h"
#include "models/io/atomic_file.h"
#include "models/t5/ensemble.h"
#include "models/t5/generation.h"
#include "models/tokenizer/t5_tokenizer.h"
#include "nn/mixed_dtype.h"
#include "tensor/error.h"

namespace sp {
namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\n");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\n");
  return s.substr(a, b - a + 1);
}

// rows -> [B, L] i64 right-padded with pad, and the mask.
std::pair<Tensor, Tensor> pad_rows(const std::vector<std::vector<int64_t>>& rows, int64_t pad) {
  size_t len = 1;
  for (const auto& r : rows) len = std::max(len, r.size());
  std::vector<int64_t> ids(rows.size() * len, pad), mask(rows.size() * len, 0);
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size(); ++j) {
      ids[i * len + j] = rows[i][j];
      mask[i * len + j] = 1;
    }
  const Shape shape{static_cast<int64_t>(rows.size()), static_cast<int64_t>(len)};
  return {Tensor::from_vector(ids, shape, DType::i64),
          Tensor::from_vector(mask, shape, DType::i64)};
}

}  // namespace

namespace {

// members == 0: the model alone; members >= 1: the ensemble API over that many prompts.
std::vector<std::vector<std::string>> predict_members(const T5ForConditionalGeneration& model,
                                                      int64_t members, const T5Tokenizer& tokenizer,
                                                      const std::vector<TaskExample>& examples,
                                                      const std::vector<std::string>& labels,
                                                      const EvalSettings& s) {
  SP_CHECK(s.method == "greedy" || s.method == "rank_classification", "[eval] unknown method '",
           s.method, "' (expected greedy or rank_classification)");
  SP_CHECK(s.batch_size > 0, "[eval] batch_size must be positive, got ", s.batch_size);
  NoGradGuard no_grad;
  WeightCastCache weight_casts;  // an f32 weight of a bf16 model is cast once, not per token
  std::vector<std::vector<int64_t>> inputs(examples.size());
  for (size_t i = 0; i < examples.size(); ++i)
    inputs[i] = tokenizer.encode(examples[i].inputs, true, s.inputs_length);
  // Batches of similar lengths waste less on padding; results go back in input order.
  std::vector<size_t> order(examples.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return inputs[a].size() < inputs[b].size(); });
  const size_t n_out = members > 0 ? static_cast<size_t>(members) : 1;
  std::vector<std::vector<std::string>> out(n_out, std::vector<std::string>(examples.size()));
  const bool rank = s.method == "rank_classification" && !labels.empty();
  std::vector<std::vector<int64_t>> label_ids;
  for (const std::string& l : labels)
    label_ids.push_back(tokenizer.encode(s.target_prefix + l, true));
  // Rank classification scores every (example, label) pair: fewer examples per batch.
  const size_t per_batch =
      rank && members == 0 ? std::max<size_t>(1, static_cast<size_t>(s.batch_size) / labels.size())
                           : static_cast<size_t>(s.batch_size);
  for (size_t start = 0; start < order.size(); start += per_batch) {
    const size_t end = std::min(order.size(), start + per_batch);
    if (!rank) {
      std::vector<std::vector<int64_t>> rows;
      for (size_t k = start; k < end; ++k) rows.push_back(inputs[order[k]]);
      auto [ids, mask] = pad_rows(rows, tokenizer.pad_id());
      const GenerateOptions g{.max_new_tokens = s.max_decode_length};
      std::vector<std::vector<std::vector<int64_t>>> generated(1);
      if (members > 0)
        ensemble_generate(model, members, ids, mask, g, &generated);
      else
        generated[0] = greedy_generate(model, ids, mask, g);
      for (size_t m = 0; m < n_out; ++m)
        for (size_t k = start; k < end; ++k)
          out[m][order[k]] = prediction_text(tokenizer, generated[m][k - start], s.target_prefix);
      continue;
    }
    if (members > 0) {
      for (size_t k = start; k < end; ++k) {
        std::vector<int64_t> choice;
        ensemble_rank_classify(model, members, inputs[order[k]], label_ids, &choice);
        for (size_t m = 0; m < n_out; ++m)
          out[m][order[k]] = labels[static_cast<size_t>(choice[m])];
      }
      continue;
    }
    std::vector<std::vector<int64_t>> rows, targets;
    for (size_t k = start; k < end; ++k)
      for (const auto& l : label_ids) {
        rows.push_back(inputs[order[k]]);
        targets.push_back(l);
      }
    auto [ids, mask] = pad_rows(rows, tokenizer.pad_id());
    auto [target_ids, target_mask] = pad_rows(targets, -100);
    const auto scores = score_sequences(model, ids, mask, target_ids);
    for (size_t k = start; k < end; ++k) {
      size_t best = 0;
      for (size_t l = 1; l < labels.size(); ++l)
        if (scores[(k - start) * labels.size() + l].logprob >
            scores[(k - start) * labels.size() + best].logprob)
          best = l;
      out[0][order[k]] = labels[best];
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> predict_texts(const T5ForConditionalGeneration& model,
                                       const T5Tokenizer& tokenizer,
                                       const std::vector<TaskExample>& examples,
                                       const std::vector<std::string>& labels,
                                       const EvalSettings& s) {
  return predict_members(model, 0, tokenizer, examples, labels, s)[0];
}

std::vector<std::vector<std::string>> predict_ensemble_texts(
    const T5ForConditionalGeneration& model, int64_t num_members, const T5Tokenizer& tokenizer,
    const std::vector<TaskExample>& examples, const std::vector<std::string>& labels,
    const EvalSettings& settings) {
  SP_CHECK(num_members >= 1, "[eval] an ensemble needs at least one member, got ", num_members);
  return predict_members(model, num_members, tokenizer, examples, labels, settings);
}

std::string prediction_text(const T5Tokenizer& tokenizer, const std::vector<int64_t>& generated,
                            const std::string& target_prefix) {
  DecodeOptions d;
  d.stop_at_eos = true;
  d.keep_sentinels = true;
  d.keep_unknown = true;
  const std::string text = trim(tokenizer.decode(generated, d));
  const std::string prefix = trim(target_prefix);
  if (prefix.empty() || !text.starts_with(prefix)) return text;
  return trim(text.substr(prefix.size()));
}

std::vector<std::string> undecodable_label_warnings(const T5Tokenizer& tokenizer,
                                                    const std::vector<std::string>& labels,
                                                    const EvalSettings& settings,
                                                    const std::string& task) {
  std::vector<std::string> out;
  if (settings.method != "greedy") return out;
  for (const std::string& label : labels) {
    const std::vector<int64_t> ids = tokenizer.encode(settings.target_prefix + label, true);
    const std::string back = prediction_text(tokenizer, ids, settings.target_prefix);
    if (back != label)
      out.push_back(str_cat("task ", task, ": label \"", label, "\" decodes as \"", back,
                            "\" after tokenization, so greedy decoding can never predict it "
                            "(change the verbalizer, or evaluate with rank_classification)"));
    if (static_cast<int64_t>(ids.size()) > settings.max_decode_length)
      out.push_back(str_cat("task ", task, ": label \"", label, "\" is ", ids.size(),
                            " tokens with EOS",
                            settings.target_prefix.empty() ? "" : " and the target prefix",
                            ", more than the ", settings.max_decode_length,
                            " greedy decoding generates, so it can never be predicted (raise "
                            "targets_length or max_decode_length)"));
  }
  return out;
}

std::string majority_vote(const std::vector<std::string>& votes) {
  SP_CHECK(!votes.empty(), "[eval] majority vote over no predictions");
  std::map<std::string, int> counts;
  for (const std::string& v : votes) ++counts[v];
  std::string best = votes.front();
  for (const std::string& v : votes)
    if (counts[v] > counts[best]) best = v;
  return best;
}

std::vector<std::string> majority_votes(const std::vector<std::vector<std::string>>& members) {
  SP_CHECK(!members.empty(), "[eval] an ensemble needs at least one member");
  std::vector<std::string> out(members.front().size());
  for (size_t m = 0; m < members.size(); ++m)
    SP_CHECK(members[m].size() == out.size(), "[eval] ensemble member ", m, " has ",
             members[m].size(), " predictions, member 0 has ", out.size());
  std::vector<std::string> votes(members.size());
  for (size_t i = 0; i < out.size(); ++i) {
    for (size_t m = 0; m < members.size(); ++m) votes[m] = members[m][i];
    out[i] = majority_vote(votes);
  }
  return out;
}

std::vector<Seq2SeqExample> tokenize_examples(const T5Tokenizer& tokenizer,
                                              const std::vector<TaskExample>& examples,
                                              int64_t inputs_length, int64_t targets_length) {
  std::vector<Seq2SeqExample> out;
  out.reserve(examples.size());
  for (const TaskExample& e : examples) {
    Seq2SeqExample x;
    for (int64_t id : tokenizer.encode(e.inputs, true, inputs_length))
      x.inputs.push_back(static_cast<int32_t>(id));
    for (int64_t id : tokenizer.encode(e.targets, true, targets_length))
      x.targets.push_back(static_cast<int32_t>(id));
    out.push_back(std::move(x));
  }
  return out;
}

nlohmann::json evaluation_identity(const std::string& split, const std::string& method,
                                   const std::vector<TaskExample>& examples) {
  Sha256 hash;
  for (const TaskExample& e : examples)
    for (const std::string* field : {&e.id, &e.inputs, &e.targets}) {
      hash.update(*field);
      hash.update(std::string_view("\0", 1));
    }
  return {{"split", split},
          {"method", method},
          {"examples", examples.size()},
          {"sha256", hash.finish_hex()}};
}

void check_eval_metric(const Task& task, const std::vector<TaskExample>& examples,
                       const std::string& metric) {
  std::vector<std::string> targets;
  targets.reserve(examples.size());
  for (const TaskExample& e : examples) targets.push_back(e.targets);
  std::vector<std::string> names;
  for (const auto& [name, value] : task.compute_metrics(examples, targets)) names.push_back(name);
  check_metric_name(task.name(), names, metric, "[run] stages.tune.metric");
}

void write_predictions(const std::string& path, const std::vector<TaskExample>& examples,
                       const std::vector<std::string>& predictions) {
  SP_CHECK(examples.size() == predictions.size(), "[eval] ", predictions.size(),
           " predictions for ", examples.size(), " examples");
  std::string text;
  for (size_t i = 0; i < examples.size(); ++i)
    text +=
        nlohmann::json{
            {"id", examples[i].id}, {"prediction", predictions[i]}, {"target", examples[i].targets}}
            .dump() +
        "\n";
  write_file_atomic(path, text, "[eval]");
}

}  // namespace sp
