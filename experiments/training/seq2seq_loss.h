#pragma once
// The training loss of one micro-batch of a seq2seq job (pretraining, tuning): teacher
// forcing, the decoder reading the labels shifted right (per packed segment), and
// cross-entropy with T5's z-loss over the target tokens, computed once here rather than
// also by the model. The result counts the batch's examples, tokens and loss terms (its
// target tokens) for the trainer and, with z-loss, splits the loss into its
// "cross_entropy" and "z_loss" parts for the log.
#include "experiments/data/batching.h"
#include "experiments/training/trainer.h"
#include "models/t5/t5_model.h"

namespace sp {

StepResult seq2seq_loss(const T5ForConditionalGeneration& model, const Batch& batch,
                        double z_loss);

}  // namespace sp
