#pragma once
// Packed rows for T5: several examples share one row of a batch (seqio's trim_and_pack,
// experiments/data/packing.h makes them). Per row, per side (encoder, decoder):
//   segment_ids [B, L] i32/i64: 0 = padding, 1..n = the example the token belongs to;
//   positions   [B, L] i32/i64: the token's index within its own example.
// Attention never crosses segments and relative positions come from the per-segment
// positions, so each example gets exactly the attention it would get alone.
#include <cstdint>

#include "tensor/tensor.h"

namespace sp {

struct T5Segments {
  Tensor segment_ids;  // [B, L] or undefined: the rows are not packed
  Tensor positions;    // [B, L] or undefined: derived from segment_ids
  bool packed() const { return segment_ids.defined(); }
};

// The additive value of a masked attention entry: the lowest finite value of dtype
// (transformers' finfo(dtype).min).
double t5_mask_lowest(DType dtype);

// segment_ids: [B, L] -> [B, L] i64: each token's index within its run of equal ids
// (a new run starts where the id changes).
Tensor segment_positions(const Tensor& segment_ids);

// Checks s against a side of B rows of L tokens (side names it in errors: "encoder",
// "decoder") and returns it with positions filled in (derived when undefined).
T5Segments resolve_segments(const T5Segments& s, int64_t B, int64_t L, const char* side);

// True when in every row positions differ from token indices by one constant per segment
// id (as pack_examples lays rows out): then key - query positions equal key - query
// indices inside each segment, and the per-shape relative bias table serves packed rows.
bool positions_follow_indices(const T5Segments& s);

// The additive mask of packed attention: query i may see key j when both lie in the same
// nonzero segment, j <= i when causal, and key_mask (when defined) is nonzero at j.
// q_seg: [B, Tq], k_seg: [B, Tk], key_mask: [B, Tk] or undefined -> [B, 1, Tq, Tk] in dtype
// (0 or t5_mask_lowest). A padding query sees no key: its row is uniform, never NaN.
Tensor t5_segment_mask(const Tensor& q_seg, const Tensor& k_seg, bool causal,
                       const Tensor& key_mask, DType dtype, Device device);

// labels: [B, T] (-100 = ignored), segment_ids: [B, T] or undefined -> [B, T] i64 decoder
// inputs: labels shifted right by one, start_id at the first token of the row and, when
// segment_ids is given, at the first token of every segment (seqio's
// make_autoregressive_inputs), -100 replaced by pad_id.
Tensor shift_right_segments(const Tensor& labels, const Tensor& segment_ids, int64_t start_id,
                            int64_t pad_id);

}  // namespace sp
