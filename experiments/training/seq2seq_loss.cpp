#include "experiments/training/seq2seq_loss.h"

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
  StepResult r;
  r.loss = cross_entropy(out.logits, labels, ce);
  r.examples = batch.stats.examples;
  r.tokens = batch.stats.input_tokens + batch.stats.target_tokens;
  r.loss_terms = batch.stats.target_tokens;
  return r;
}

}  // namespace sp
