#include "experiments/training/seq2seq_loss.h"

#include <utility>

#include "autograd/ops.h"

namespace sp {

StepResult seq2seq_loss(const T5ForConditionalGeneration& model, const Batch& batch,
                        double z_loss) {
  T5Inputs in = batch.inputs;
  in.decoder_input_ids = model.shift_right(in.labels, in.decoder_segment_ids);
  // Batches are built on the host; forward moves its own inputs, the loss's labels go here.
  const Tensor labels = in.labels.to(model.device());
  in.labels = Tensor();
  const T5Output out = model.forward(in);
  CrossEntropyOptions ce;
  ce.z_loss = z_loss;
  CrossEntropyParts loss = cross_entropy_parts(out.logits, labels, ce);
  StepResult r;
  r.loss = std::move(loss.loss);
  if (z_loss != 0) {
    r.loss_parts["cross_entropy"] = r.loss.item<double>() - loss.z_term;
    r.loss_parts["z_loss"] = loss.z_term;
  }
  r.examples = batch.stats.examples;
  r.tokens = batch.stats.input_tokens + batch.stats.target_tokens;
  r.loss_terms = batch.stats.target_tokens;
  return r;
}

}  // namespace sp
