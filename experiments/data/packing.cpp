#include "experiments/data/packing.h"

#include <algorithm>

namespace sp {

namespace {

void append(std::vector<int32_t>& tokens, std::vector<int32_t>& segments,
            std::vector<int32_t>& positions, const std::vector<int32_t>& seq, int32_t segment) {
  for (size_t t = 0; t < seq.size(); ++t) {
    tokens.push_back(seq[t]);
    segments.push_back(segment);
    positions.push_back(static_cast<int32_t>(t));
  }
}

}  // namespace

PackResult pack_examples(const std::vector<Seq2SeqExample>& examples, const PackingOptions& o) {
  SP_CHECK(o.inputs_length > 0 && o.targets_length > 0,
           "[packing] inputs_length and targets_length must be positive, got ", o.inputs_length,
           " and ", o.targets_length);
  SP_CHECK(o.max_open_rows >= 0 && o.max_rows >= 0,
           "[packing] max_open_rows and max_rows must be >= 0 (0 = unlimited), got ",
           o.max_open_rows, " and ", o.max_rows);
  PackResult r;
  BatchStats& st = r.stats;
  std::vector<size_t> open;  // rows that may still take examples, oldest first
  for (size_t i = 0; i < examples.size(); ++i) {
    Seq2SeqExample e = examples[i];
    SP_CHECK(!e.inputs.empty() && !e.targets.empty(), "[packing] example ", i, " has empty ",
             e.inputs.empty() ? "inputs" : "targets");
    const FitResult fi = fit_length(e.inputs, o.inputs_length, o.over_length, "inputs", i);
    const FitResult ft = fit_length(e.targets, o.targets_length, o.over_length, "targets", i);
    if (fi == FitResult::dropped || ft == FitResult::dropped) {
      ++st.dropped;
      ++r.consumed;
      continue;
    }
    const int64_t ni = static_cast<int64_t>(e.inputs.size());
    const int64_t nt = static_cast<int64_t>(e.targets.size());
    auto fits = [&](size_t row) {
      const PackedRow& p = r.rows[row];
      return static_cast<int64_t>(p.inputs.size()) + ni <= o.inputs_length &&
             static_cast<int64_t>(p.targets.size()) + nt <= o.targets_length;
    };
    auto slot = std::find_if(open.begin(), open.end(), fits);
    size_t row;
    if (slot != open.end()) {
      row = *slot;
    } else {
      if (o.max_rows > 0 && static_cast<int64_t>(r.rows.size()) == o.max_rows) break;
      if (o.max_open_rows > 0 && static_cast<int64_t>(open.size()) == o.max_open_rows)
        open.erase(open.begin());
      r.rows.emplace_back();
      row = r.rows.size() - 1;
      open.push_back(row);
      slot = open.end() - 1;
    }
    PackedRow& p = r.rows[row];
    const int32_t segment = static_cast<int32_t>(++p.examples);
    append(p.inputs, p.input_segment_ids, p.input_positions, e.inputs, segment);
    append(p.targets, p.target_segment_ids, p.target_positions, e.targets, segment);
    // A row with a full side takes nothing more (every example has a token on each side).
    if (static_cast<int64_t>(p.inputs.size()) == o.inputs_length ||
        static_cast<int64_t>(p.targets.size()) == o.targets_length)
      open.erase(slot);
    if (fi == FitResult::truncated || ft == FitResult::truncated) ++st.truncated;
    ++st.examples;
    st.input_tokens += ni;
    st.target_tokens += nt;
    ++r.consumed;
  }
  st.rows = o.max_rows > 0 ? o.max_rows : static_cast<int64_t>(r.rows.size());
  st.input_slots = st.rows * o.inputs_length;
  st.target_slots = st.rows * o.targets_length;
  return r;
}

Batch make_packed_batch(const PackResult& packed, const PackingOptions& o) {
  const int64_t rows = static_cast<int64_t>(packed.rows.size());
  const int64_t R = o.max_rows > 0 ? o.max_rows : rows;
  SP_CHECK(R > 0, "[packing] no rows to batch");
  SP_CHECK(rows <= R, "[packing] ", rows, " packed rows do not fit max_rows ", R);
  const int64_t S = o.inputs_length, T = o.targets_length;
  std::vector<int64_t> ids(R * S, o.pad_id), mask(R * S, 0), eseg(R * S, 0), epos(R * S, 0);
  std::vector<int64_t> labels(R * T, -100), dmask(R * T, 0), dseg(R * T, 0), dpos(R * T, 0);
  for (int64_t b = 0; b < rows; ++b) {
    const PackedRow& p = packed.rows[b];
    SP_CHECK(
        static_cast<int64_t>(p.inputs.size()) <= S && static_cast<int64_t>(p.targets.size()) <= T,
        "[packing] row ", b, " holds ", p.inputs.size(), " inputs and ", p.targets.size(),
        " targets, more than the lengths ", S, " and ", T);
    for (size_t t = 0; t < p.inputs.size(); ++t) {
      ids[b * S + t] = p.inputs[t];
      mask[b * S + t] = 1;
      eseg[b * S + t] = p.input_segment_ids[t];
      epos[b * S + t] = p.input_positions[t];
    }
    for (size_t t = 0; t < p.targets.size(); ++t) {
      labels[b * T + t] = p.targets[t];
      dmask[b * T + t] = 1;
      dseg[b * T + t] = p.target_segment_ids[t];
      dpos[b * T + t] = p.target_positions[t];
    }
  }
  Batch batch;
  batch.stats = packed.stats;
  T5Inputs& in = batch.inputs;
  in.input_ids = Tensor::from_vector(ids, Shape{R, S});
  in.attention_mask = Tensor::from_vector(mask, Shape{R, S});
  in.encoder_segment_ids = Tensor::from_vector(eseg, Shape{R, S});
  in.encoder_positions = Tensor::from_vector(epos, Shape{R, S});
  in.labels = Tensor::from_vector(labels, Shape{R, T});
  in.decoder_attention_mask = Tensor::from_vector(dmask, Shape{R, T});
  in.decoder_segment_ids = Tensor::from_vector(dseg, Shape{R, T});
  in.decoder_positions = Tensor::from_vector(dpos, Shape{R, T});
  return batch;
}

}  // namespace sp
