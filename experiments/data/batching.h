#pragma once
// Seq2SeqExample lists -> T5Inputs tensors, one example per row (packing.h puts several
// examples in a row).
//
// A padded batch has B = number of examples kept rows; inputs are padded with pad_id to
// inputs_length (or to the longest inputs of the batch when 0), targets likewise; labels
// are -100 on padding (cross_entropy ignores them), attention_mask and
// decoder_attention_mask are 1 on tokens and 0 on padding. Tensors are i64 on the CPU.
//
// A sequence longer than its length follows OverLength: error (throw, naming the example
// and the lengths), truncate (keep the first length - 1 tokens and the last token, so an
// EOS-terminated sequence stays EOS-terminated), or drop (leave the example out; counted).
#include <cstdint>
#include <string>
#include <vector>

#include "experiments/objectives/example.h"
#include "models/t5/t5_model.h"

namespace sp {

enum class OverLength { error, truncate, drop };

// "error" / "truncate" / "drop" and back; the parser throws "[data] ..." on other names.
const char* over_length_name(OverLength policy);
OverLength over_length_from_name(const std::string& name);

struct PaddedBatchOptions {
  int64_t inputs_length = 0;   // 0: the longest inputs in the batch
  int64_t targets_length = 0;  // 0: the longest targets in the batch
  OverLength over_length = OverLength::error;
  int64_t pad_id = 0;
};

// Token counts of a batch: how much of it is padding.
struct BatchStats {
  int64_t examples = 0;       // examples in the batch
  int64_t rows = 0;           // B
  int64_t dropped = 0;        // left out by OverLength::drop
  int64_t truncated = 0;      // examples with inputs or targets truncated
  int64_t input_tokens = 0;   // non-padding encoder tokens
  int64_t target_tokens = 0;  // non-padding decoder tokens
  int64_t input_slots = 0;    // B * inputs length
  int64_t target_slots = 0;   // B * targets length
  // Share of non-padding tokens over all slots, encoder and decoder together (0 when empty).
  double efficiency() const;
  double input_efficiency() const;
  double target_efficiency() const;
  BatchStats& operator+=(const BatchStats& other);
};

struct Batch {
  T5Inputs inputs;  // input_ids, attention_mask, labels, decoder_attention_mask
                    // (+ segment ids and positions for packed rows)
  BatchStats stats;
};

// What fitting seq to length did: it fits as is, was truncated, or must be dropped.
enum class FitResult { fits, truncated, dropped };

// Applies policy to seq when it is longer than length (> 0). what ("inputs" / "targets")
// and index name the example in the error.
FitResult fit_length(std::vector<int32_t>& seq, int64_t length, OverLength policy, const char* what,
                     size_t index);

// examples -> a padded batch. Throws "[batch] ..." when no example is left or a sequence
// is empty.
Batch make_padded_batch(const std::vector<Seq2SeqExample>& examples, const PaddedBatchOptions& options);

}  // namespace sp
