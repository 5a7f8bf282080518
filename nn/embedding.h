#pragma once
// Embedding: a lookup table; backward scatter-adds into the rows used.
#include <cstdint>

#include "nn/module.h"

namespace sp {

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, DType dtype = DType::f32);
  // ids: [...] i32/i64 -> [..., D]
  Tensor forward(const Tensor& ids) const;

  int64_t num_embeddings() const { return weight.size(0); }
  int64_t embedding_dim() const { return weight.size(1); }

  Tensor weight;  // [V, D]
};

}  // namespace sp
