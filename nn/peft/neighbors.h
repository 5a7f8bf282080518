#pragma once
// Interpreting prompts (the paper's section 7): the vocabulary pieces nearest to each prompt
// vector by cosine similarity.
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace sp {

struct Neighbor {
  int64_t id = 0;
  double cosine = 0;
};

// vectors: [n, D], embedding: [V, D] (any floating dtypes; computed in f32), searching the
// first num_rows rows (-1: all; a T5 embedding has rows past the tokenizer's vocabulary)
// -> per vector its k nearest rows, most similar first (ties: the lower id).
std::vector<std::vector<Neighbor>> nearest_neighbors(const Tensor& vectors,
                                                     const Tensor& embedding, int64_t k,
                                                     int64_t num_rows = -1);

}  // namespace sp
