#pragma once
// TuneJob: the TrainingJob of a tune stage. A frozen T5 with a PEFT method attached learns
// a task's training examples (already tokenized) with teacher forcing, cross-entropy plus
// T5's z-loss; the trainer (experiments/training/trainer.h) runs the loop, evaluation,
// early stopping, checkpoints and resume.
//
// Data order: epoch e visits the examples in a permutation drawn from DataRng(seed, e), so
// the stream's whole state is (epoch, position) and a resumed run sees the same batches.
// Micro-batches are padded to their longest example (no packing, as the paper).
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "experiments/objectives/example.h"
#include "experiments/training/trainer.h"
#include "models/t5/t5_model.h"
#include "nn/peft/peft.h"

namespace sp {

struct TuneJobOptions {
  int64_t micro_batch_size = 32;  // examples per micro-batch
  uint64_t seed = 0;              // data order
  double z_loss = 1e-4;
  // What the evaluator scores on (TrainingJob::evaluation_identity); null: not tracked.
  nlohmann::json evaluation = nullptr;
};

class TuneJob : public TrainingJob {
 public:
  using Evaluator = std::function<std::optional<EvalResult>(int64_t step)>;

  // model and peft (attached to model) and dropout_gen (the model's dropout generator, may
  // be null) must outlive the job. Throws "[tune] ..." when train is empty.
  TuneJob(T5ForConditionalGeneration& model, PeftMethod& peft, std::vector<Seq2SeqExample> train,
          TuneJobOptions options, Evaluator evaluator, Generator* dropout_gen);

  StepResult micro_batch_loss(int64_t step, int64_t micro) override;
  std::optional<EvalResult> evaluate(int64_t step) override;
  NamedTensorList trainable() override;
  nlohmann::json data_state() override;
  void restore_data_state(const nlohmann::json& state) override;
  nlohmann::json evaluation_identity() override { return options_.evaluation; }
  void save_model(const std::string& dir) override;
  std::vector<std::pair<std::string, Generator*>> generators() override;
  void set_training(bool training) override;

 private:
  size_t next_index();

  T5ForConditionalGeneration& model_;
  PeftMethod& peft_;
  std::vector<Seq2SeqExample> train_;
  TuneJobOptions options_;
  Evaluator evaluator_;
  Generator* dropout_gen_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;
  int64_t perm_epoch_ = -1;
  std::vector<size_t> perm_;
};

}  // namespace sp
