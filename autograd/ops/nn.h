#pragma once
// Fused neural-network ops: softmax, norms, losses, embedding, dropout.
// Softmax, norms and losses compute in fp32 whatever the storage dtype.
#include <cstdint>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace sp {

Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
// softmax(x + bias, -1) in one pass, bias broadcastable with x: attention scores plus a
// position bias or mask. Values and gradients equal the two ops' bit for bit.
Tensor add_softmax(const Tensor& x, const Tensor& bias);

// x: [..., D], weight: [D] -> [..., D]; y = weight * (x * rsqrt(mean(x^2) + eps)), as T5.
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);

enum class Reduction { mean, sum, none };
struct CrossEntropyOptions {
  int64_t ignore_index = -100;
  double z_loss = 0;                      // adds z_loss * logsumexp^2 per kept token
  Reduction reduction = Reduction::mean;  // mean over kept tokens
};
// logits: [..., V], targets: [...] i64/i32 -> scalar f32 (or [...] for Reduction::none).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets,
                     const CrossEntropyOptions& options = {});
// cross_entropy's result and, for logging, how much of it is the z-loss term (reduced as
// the loss is: mean or sum over kept tokens; 0 for Reduction::none or z_loss == 0), so
// that the cross-entropy alone is loss - z_term.
struct CrossEntropyParts {
  Tensor loss;        // what cross_entropy returns, in the graph
  double z_term = 0;  // a value, no graph
};
CrossEntropyParts cross_entropy_parts(const Tensor& logits, const Tensor& targets,
                                      const CrossEntropyOptions& options = {});

// weight: [V, D], ids: [...] i32/i64 -> [..., D]; backward scatter-adds into weight rows.
Tensor embedding(const Tensor& weight, const Tensor& ids);

// Zeroes elements with probability p and scales the rest by 1 / (1 - p); the mask comes
// from Philox at the generator's next state (the default generator when null).
// Identity when !training or p == 0.
Tensor dropout(const Tensor& x, double p, bool training = true, Generator* gen = nullptr);

}  // namespace sp
