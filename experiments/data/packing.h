#pragma once
// Packing: several Seq2SeqExamples per row of fixed inputs_length / targets_length, as
// T5 pretrains (seqio's trim_and_pack_dataset), with segment ids and per-segment positions
// that T5 (models/t5/segments.h) uses to keep attention and relative positions inside each
// example.
//
// The algorithm: greedy first-fit in order. Examples are taken in the given order; each
// goes into the first open row (oldest first) where both its inputs and its targets still
// fit, else into a new row. Segment ids count 1, 2, ... within a row in the order examples
// arrived; positions restart at 0 for each example; the tail of a row is padding (segment
// 0, position 0, labels -100).
//   max_open_rows = 0: every row stays open (first-fit over the whole list: seqio's
//     custom-op packer, pack_sequences2, does this within each batch it sees).
//   max_open_rows = 1: a row closes as soon as an example does not fit (next-fit):
//     exactly seqio's default _pack_with_tf_ops.
//   k > 1: when a new row would be the (k + 1)-th open one, the oldest open row closes.
// An example longer than a row follows OverLength (batching.h); seqio trims (truncate,
// which here keeps EOS last).
#include <cstdint>
#include <vector>

#include "experiments/data/batching.h"
#include "experiments/objectives/example.h"

namespace sp {

struct PackingOptions {
  int64_t inputs_length = 512;   // encoder tokens per row
  int64_t targets_length = 114;  // decoder tokens per row
  OverLength over_length = OverLength::truncate;
  int64_t max_open_rows = 0;  // see above; 0 = unlimited
  // 0: as many rows as the examples need. n > 0: stop at the first example that fits in
  // none of n rows (PackResult::consumed says where), and batches have exactly n rows
  // (missing rows are all padding): a fixed batch shape for training.
  int64_t max_rows = 0;
  int64_t pad_id = 0;
};

// One row: examples concatenated, not yet padded.
struct PackedRow {
  std::vector<int32_t> inputs, targets;
  std::vector<int32_t> input_segment_ids, target_segment_ids;  // 1..examples
  std::vector<int32_t> input_positions, target_positions;      // 0.. within each example
  int64_t examples = 0;
};

struct PackResult {
  std::vector<PackedRow> rows;
  int64_t consumed = 0;  // examples used (packed or dropped), from the front of the list
  BatchStats stats;      // slots count max_rows rows when max_rows > 0
};

// examples -> rows by greedy first-fit (above). Throws "[packing] ..." on an empty
// sequence, non-positive lengths, or an over-long example under OverLength::error.
PackResult pack_examples(const std::vector<Seq2SeqExample>& examples,
                         const PackingOptions& options);

// rows -> T5Inputs of [R, inputs_length] / [R, targets_length] with input_ids,
// attention_mask (segment != 0), encoder_segment_ids, encoder_positions, labels (-100 on
// padding), decoder_attention_mask, decoder_segment_ids, decoder_positions; R = max_rows
// when > 0 (empty rows are all padding), else rows.size(). stats: the result's stats.
Batch make_packed_batch(const PackResult& packed, const PackingOptions& options);

}  // namespace sp
