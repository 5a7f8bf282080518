#pragma once
// T5's relative position buckets (transformers' modeling_t5.py,
// T5Attention._relative_position_bucket).
#include <cstdint>

#include "tensor/tensor.h"

namespace sp {

// rel = key_pos - query_pos -> bucket in [0, num_buckets), computed as transformers does
// (the logarithmic part in float32, in the same order, truncated).
int64_t relative_position_bucket(int64_t rel, bool bidirectional, int64_t num_buckets,
                                 int64_t max_distance);

// -> [q_len, k_len] i64 buckets for queries at positions q_offset .. q_offset + q_len - 1
// (q_offset > 0 when decoding incrementally) and keys at 0 .. k_len - 1. Cached per
// (q_len, k_len, bidirectional, num_buckets, max_distance, q_offset, device): every layer
// and step with the same shape shares one read-only table on device (built on the host,
// copied to the device once).
Tensor relative_position_buckets(int64_t q_len, int64_t k_len, bool bidirectional,
                                 int64_t num_buckets, int64_t max_distance, int64_t q_offset = 0,
                                 Device device = Device::cpu());

// Packed rows: q_pos: [B, Tq], k_pos: [B, Tk] (i32/i64, each token's position within its
// own segment) -> [B, Tq, Tk] i32 buckets of k_pos - q_pos. Not cached: it depends on the
// row layout, and is rebuilt once per stack and batch.
Tensor relative_position_buckets(const Tensor& q_pos, const Tensor& k_pos, bool bidirectional,
                                 int64_t num_buckets, int64_t max_distance);

}  // namespace sp
