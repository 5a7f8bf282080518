#include "experiments/runner/tune_job.h"

#include <cstdio>
#include <numeric>

#include "autograd/ops.h"
#include "experiments/data/batching.h"
#include "experiments/objectives/data_rng.h"
#include "experiments/training/seq2seq_loss.h"
#include "tensor/error.h"

namespace sp {

TuneJob::TuneJob(T5ForConditionalGeneration& model, PeftMethod& peft,
                 std::vector<Seq2SeqExample> train, TuneJobOptions options, Evaluator evaluator,
                 Generator* dropout_gen)
    : model_(model),
      peft_(peft),
      train_(std::move(train)),
      options_(options),
      evaluator_(std::move(evaluator)),
      dropout_gen_(dropout_gen) {
  SP_CHECK(!train_.empty(), "[tune] the training split has no examples");
  SP_CHECK(options_.micro_batch_size > 0, "[tune] micro-batch size must be positive, got ",
           options_.micro_batch_size);
}

size_t TuneJob::next_index() {
  if (position_ >= static_cast<int64_t>(train_.size())) {
    ++epoch_;
    position_ = 0;
  }
  if (perm_epoch_ != epoch_) {
    perm_.resize(train_.size());
    std::iota(perm_.begin(), perm_.end(), size_t{0});
    DataRng rng(options_.seed, static_cast<uint64_t>(epoch_));
    rng.shuffle(perm_.begin(), perm_.end());
    perm_epoch_ = epoch_;
  }
  return perm_[static_cast<size_t>(position_++)];
}

StepResult TuneJob::micro_batch_loss(int64_t, int64_t) {
  std::vector<Seq2SeqExample> examples;
  examples.reserve(static_cast<size_t>(options_.micro_batch_size));
  for (int64_t i = 0; i < options_.micro_batch_size; ++i) examples.push_back(train_[next_index()]);
  return seq2seq_loss(model_, make_padded_batch(examples, {}), options_.z_loss);
}

std::optional<EvalResult> TuneJob::evaluate(int64_t step) {
  return evaluator_ ? evaluator_(step) : std::nullopt;
}

NamedTensorList TuneJob::trainable() {
  NamedTensorList out;
  for (auto& [name, t] : peft_.trainable()) out.emplace_back(name, t);
  return out;
}

nlohmann::json TuneJob::data_state() {
  return {{"epoch", epoch_},
          {"position", position_},
          {"seed", options_.seed},
          {"examples", train_.size()},
          {"micro_batch_size", options_.micro_batch_size}};
}

void TuneJob::restore_data_state(const nlohmann::json& state) {
  SP_CHECK(state.value("seed", options_.seed) == options_.seed &&
               state.value("examples", train_.size()) == train_.size(),
           "[tune] the checkpoint's data state ", state.dump(), " is from another seed or data set (",
           options_.seed, ", ", train_.size(), " examples)");
  epoch_ = state.at("epoch").get<int64_t>();
  position_ = state.at("position").get<int64_t>();
  SP_CHECK(epoch_ >= 0 && position_ >= 0 && position_ <= static_cast<int64_t>(train_.size()),
           "[tune] the checkpoint's data state ", state.dump(), " is outside the data set (",
           train_.size(), " examples)");
  perm_epoch_ = -1;
  // The position counts examples, so another batch size goes on from the same example.
  const int64_t saved_batch = state.value("micro_batch_size", options_.micro_batch_size);
  if (saved_batch != options_.micro_batch_size)
    std::fprintf(stderr, "[tune] resuming with micro-batch size %lld (the checkpoint's: %lld)\n",
                 static_cast<long long>(options_.micro_batch_size),
                 static_cast<long long>(saved_batch));
}

void TuneJob::save_model(const std::string& dir) { peft_.save(dir); }

std::vector<std::pair<std::string, Generator*>> TuneJob::generators() {
  std::vector<std::pair<std::string, Generator*>> out;
  if (dropout_gen_) out.emplace_back("dropout", dropout_gen_);
  for (const auto& [name, gen] : peft_.generators()) out.emplace_back("peft." + name, gen);
  return out;
}

void TuneJob::set_training(bool training) { model_.train(training); }

}  // namespace sp
