// Packed rows: the packing layout, padded batches, and T5 on packed rows giving each
// example exactly what it gets alone (logits, summed loss, gradients).
#include "experiments/data/packing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "autograd/ops.h"
#include "experiments/data/batching.h"
#include "models/t5/relative_position.h"
#include "models/t5/segments.h"
#include "models/t5/t5_model.h"
#include "test_util.h"
#include "tiny_t5.h"

namespace sp {
namespace {

using I32 = std::vector<int32_t>;
using I64 = std::vector<int64_t>;


Seq2SeqExample ex(int32_t first, int64_t n_in, int64_t n_tg) {
  Seq2SeqExample e;
  for (int64_t i = 0; i + 1 < n_in; ++i) e.inputs.push_back(first + static_cast<int32_t>(i));
  e.inputs.push_back(1);
  for (int64_t i = 0; i + 1 < n_tg; ++i) e.targets.push_back(first + 7 + static_cast<int32_t>(i));
  e.targets.push_back(1);
  return e;
}

// The hand example: (inputs, targets) lengths A (3, 2), B (4, 3), C (2, 1), D (5, 2),
// E (1, 1) into rows of 8 inputs and 4 targets.
std::vector<Seq2SeqExample> hand_examples() {
  return {ex(2, 3, 2), ex(10, 4, 3), ex(20, 2, 1), ex(3, 5, 2), ex(30, 1, 1)};
}

PackingOptions hand_options() {
  PackingOptions o;
  o.inputs_length = 8;
  o.targets_length = 4;
  return o;
}

TEST(Packing, first_fit_layout_on_a_hand_example) {
  const auto es = hand_examples();
  PackResult r = pack_examples(es, hand_options());
  // A -> row 0; B does not fit row 0 (5 targets) -> row 1; C -> row 0; D fits neither
  // (10, 9 inputs) -> row 2; E -> row 0, which is then full on the targets side.
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.consumed, 5);
  const PackedRow& p = r.rows[0];
  EXPECT_EQ(p.examples, 3);
  EXPECT_EQ(p.inputs, (I32{2, 3, 1, 20, 1, 1}));
  EXPECT_EQ(p.input_segment_ids, (I32{1, 1, 1, 2, 2, 3}));
  EXPECT_EQ(p.input_positions, (I32{0, 1, 2, 0, 1, 0}));
  EXPECT_EQ(p.targets, (I32{9, 1, 1, 1}));
  EXPECT_EQ(p.target_segment_ids, (I32{1, 1, 2, 3}));
  EXPECT_EQ(p.target_positions, (I32{0, 1, 0, 0}));
  EXPECT_EQ(r.rows[1].inputs, es[1].inputs);
  EXPECT_EQ(r.rows[1].target_positions, (I32{0, 1, 2}));
  EXPECT_EQ(r.rows[2].inputs, es[3].inputs);
  EXPECT_EQ(r.rows[2].input_segment_ids, (I32{1, 1, 1, 1, 1}));
  // Efficiency: 15 input and 9 target tokens in 3 * (8 + 4) slots.
  EXPECT_EQ(r.stats.input_tokens, 15);
  EXPECT_EQ(r.stats.target_tokens, 9);
  EXPECT_EQ(r.stats.rows, 3);
  EXPECT_DOUBLE_EQ(r.stats.efficiency(), 24.0 / 36.0);
  EXPECT_DOUBLE_EQ(r.stats.input_efficiency(), 15.0 / 24.0);
  EXPECT_DOUBLE_EQ(r.stats.target_efficiency(), 9.0 / 12.0);

  // The tensors of the batch.
  Batch b = make_packed_batch(r, hand_options());
  const T5Inputs& in = b.inputs;
  EXPECT_EQ(in.input_ids.shape(), (Shape{3, 8}));
  EXPECT_EQ(in.labels.shape(), (Shape{3, 4}));
  I64 ids = in.input_ids.to_vector<int64_t>();
  EXPECT_EQ(I64(ids.begin(), ids.begin() + 8), (I64{2, 3, 1, 20, 1, 1, 0, 0}));
  I64 seg = in.encoder_segment_ids.to_vector<int64_t>();
  EXPECT_EQ(I64(seg.begin(), seg.begin() + 8), (I64{1, 1, 1, 2, 2, 3, 0, 0}));
  I64 mask = in.attention_mask.to_vector<int64_t>();
  EXPECT_EQ(I64(mask.begin() + 8, mask.begin() + 16), (I64{1, 1, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(in.labels.to_vector<int64_t>(), (I64{9, 1, 1, 1, 17, 18, 1, -100, 10, 1, -100, -100}));
  EXPECT_EQ(in.decoder_segment_ids.to_vector<int64_t>(), (I64{1, 1, 2, 3, 1, 1, 1, 0, 1, 1, 0, 0}));
  EXPECT_EQ(in.decoder_positions.to_vector<int64_t>(), (I64{0, 1, 0, 0, 0, 1, 2, 0, 0, 1, 0, 0}));
  EXPECT_EQ(in.decoder_attention_mask.to_vector<int64_t>(),
            (I64{1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0}));
  I64 pos = in.encoder_positions.to_vector<int64_t>();
  EXPECT_EQ(I64(pos.begin() + 16, pos.end()), (I64{0, 1, 2, 3, 4, 0, 0, 0}));
}

TEST(Packing, next_fit_and_max_rows) {
  PackingOptions o = hand_options();
  o.max_open_rows = 1;  // seqio's _pack_with_tf_ops: a row closes when an example misses it
  PackResult r = pack_examples(hand_examples(), o);
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0].input_segment_ids, (I32{1, 1, 1}));           // A
  EXPECT_EQ(r.rows[1].input_segment_ids, (I32{1, 1, 1, 1, 2, 2}));  // B C
  EXPECT_EQ(r.rows[2].input_segment_ids, (I32{1, 1, 1, 1, 1, 2}));  // D E

  // Two rows at most: A, B, C placed; D fits neither and stops the packing there.
  o = hand_options();
  o.max_rows = 2;
  r = pack_examples(hand_examples(), o);
  EXPECT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.consumed, 3);
  EXPECT_EQ(r.stats.examples, 3);
  // Fewer rows than max_rows: the batch still has max_rows rows, the rest padding.
  o.max_rows = 4;
  r = pack_examples(hand_examples(), o);
  Batch b = make_packed_batch(r, o);
  EXPECT_EQ(b.inputs.input_ids.shape(), (Shape{4, 8}));
  I64 labels = b.inputs.labels.to_vector<int64_t>();
  EXPECT_EQ(I64(labels.begin() + 12, labels.end()), (I64{-100, -100, -100, -100}));
  EXPECT_DOUBLE_EQ(b.stats.efficiency(), 24.0 / 48.0);
}

TEST(Packing, over_length_policies) {
  std::vector<Seq2SeqExample> es = {ex(2, 3, 2), ex(10, 11, 3), ex(20, 2, 1)};
  PackingOptions o = hand_options();
  o.over_length = OverLength::error;
  EXPECT_THROW_MSG(pack_examples(es, o),
                   "example 1 has 11 inputs tokens, more than inputs length 8");
  o.over_length = OverLength::drop;
  PackResult r = pack_examples(es, o);
  EXPECT_EQ(r.stats.dropped, 1);
  EXPECT_EQ(r.stats.examples, 2);
  EXPECT_EQ(r.consumed, 3);
  o.over_length = OverLength::truncate;
  r = pack_examples(es, o);
  EXPECT_EQ(r.stats.truncated, 1);
  ASSERT_EQ(r.rows.size(), 2u);
  // The first 7 tokens and EOS.
  EXPECT_EQ(r.rows[1].inputs, (I32{10, 11, 12, 13, 14, 15, 16, 1}));
  EXPECT_EQ(over_length_from_name("drop"), OverLength::drop);
  EXPECT_THROW_MSG(over_length_from_name("cut"), "unknown over-length policy \"cut\"");
  EXPECT_THROW_MSG(pack_examples({Seq2SeqExample{{}, {1}}}, o), "example 0 has empty inputs");
}

TEST(Batching, padded_batches) {
  std::vector<Seq2SeqExample> es = {ex(2, 3, 2), ex(10, 5, 1)};
  Batch b = make_padded_batch(es, PaddedBatchOptions{});  // longest in batch
  const T5Inputs& in = b.inputs;
  EXPECT_EQ(in.input_ids.to_vector<int64_t>(), (I64{2, 3, 1, 0, 0, 10, 11, 12, 13, 1}));
  EXPECT_EQ(in.attention_mask.to_vector<int64_t>(), (I64{1, 1, 1, 0, 0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(in.labels.to_vector<int64_t>(), (I64{9, 1, 1, -100}));
  EXPECT_EQ(in.decoder_attention_mask.to_vector<int64_t>(), (I64{1, 1, 1, 0}));
  EXPECT_FALSE(in.encoder_segment_ids.defined());
  EXPECT_EQ(b.stats.input_tokens, 8);
  EXPECT_DOUBLE_EQ(b.stats.efficiency(), 11.0 / 14.0);

  PaddedBatchOptions fixed;
  fixed.inputs_length = 6;
  fixed.targets_length = 3;
  fixed.pad_id = 0;
  b = make_padded_batch(es, fixed);
  EXPECT_EQ(b.inputs.input_ids.shape(), (Shape{2, 6}));
  EXPECT_EQ(b.inputs.labels.to_vector<int64_t>(), (I64{9, 1, -100, 1, -100, -100}));

  fixed.inputs_length = 4;
  EXPECT_THROW_MSG(make_padded_batch(es, fixed), "example 1 has 5 inputs tokens");
  fixed.over_length = OverLength::truncate;
  b = make_padded_batch(es, fixed);
  EXPECT_EQ(b.inputs.input_ids.to_vector<int64_t>(), (I64{2, 3, 1, 0, 10, 11, 12, 1}));
  EXPECT_EQ(b.stats.truncated, 1);
  fixed.over_length = OverLength::drop;
  b = make_padded_batch(es, fixed);
  EXPECT_EQ(b.inputs.input_ids.shape(), (Shape{1, 4}));
  EXPECT_EQ(b.stats.dropped, 1);
}

TEST(Packing, positions_buckets_and_shift_right_per_segment) {
  Tensor seg = Tensor::from_vector<int64_t>({1, 1, 1, 2, 2, 3, 3, 3, 0, 0}, Shape{1, 10});
  EXPECT_EQ(segment_positions(seg).to_vector<int64_t>(), (I64{0, 1, 2, 0, 1, 0, 1, 2, 0, 1}));
  // seqio's make_autoregressive_inputs example.
  Tensor labels = Tensor::from_vector<int64_t>({3, 8, 1, 9, 1, 5, 4, 1, -100, -100}, Shape{1, 10});
  EXPECT_EQ(shift_right_segments(labels, seg, 0, 0).to_vector<int64_t>(),
            (I64{0, 3, 8, 0, 9, 0, 5, 4, 0, 0}));
  EXPECT_EQ(shift_right_segments(labels, Tensor(), 7, 0).to_vector<int64_t>(),
            (I64{7, 3, 8, 1, 9, 1, 5, 4, 1, 0}));
  // Buckets from positions 0..n-1 equal the per-shape table, for both directions.
  for (bool bidirectional : {true, false}) {
    Tensor p = Tensor::arange(13).reshape(Shape{1, 13});
    EXPECT_EQ(relative_position_buckets(p, p, bidirectional, 8, 16).to_vector<int64_t>(),
              relative_position_buckets(13, 13, bidirectional, 8, 16).to_vector<int64_t>());
  }
  // The mask: same nonzero segment, causal when asked.
  Tensor s2 = Tensor::from_vector<int64_t>({1, 1, 2, 0}, Shape{1, 4});
  Tensor m = t5_segment_mask(s2, s2, true, Tensor(), DType::f32, Device::cpu());
  const double L = t5_mask_lowest(DType::f32);
  sp::testing::expect_values(m, {0, L, L, L, 0, 0, L, L, L, L, 0, L, L, L, L, L});
  EXPECT_THROW_MSG(resolve_segments({seg, Tensor()}, 1, 9, "encoder"),
                   "encoder segment ids are [1, 10] i64, expected [1, 9] i32/i64");
}

// The logits of each target token of each example, by example index: packed rows read
// through the segment layout, examples alone read whole.
using PerExample = std::map<size_t, std::vector<double>>;

class PackedT5 : public ::testing::TestWithParam<bool> {};

TEST_P(PackedT5, packed_rows_equal_examples_alone) {
  const T5Config c = tiny_t5_config(GetParam());
  T5ForConditionalGeneration m(c);
  Generator gen(11);
  m.init_weights(&gen);
  m.eval();
  const int64_t V = c.vocab_size;
  // Three examples in row 0, the fourth alone in row 1; padding in both rows.
  const std::vector<Seq2SeqExample> es = {ex(2, 5, 3), ex(11, 3, 5), ex(17, 7, 2), ex(4, 12, 4)};
  PackingOptions o;
  o.inputs_length = 18;
  o.targets_length = 12;
  PackResult r = pack_examples(es, o);
  ASSERT_EQ(r.rows.size(), 2u);
  ASSERT_EQ(r.rows[0].examples, 3);
  Batch packed = make_packed_batch(r, o);

  // Packed: logits, summed loss, gradients.
  T5Output po = m.forward(packed.inputs);
  const double n_tokens = static_cast<double>(packed.stats.target_tokens);
  (po.loss * n_tokens).backward();
  std::map<std::string, std::vector<double>> packed_grads;
  for (auto& [name, p] : m.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    packed_grads[name] = p.grad().to_vector<double>();
    p.zero_grad();
  }
  const double packed_loss = po.loss.item() * n_tokens;
  PerExample packed_logits;
  {
    const std::vector<double> lg = po.logits.to_vector<double>();
    const int64_t T = o.targets_length;
    size_t e = 0;
    for (int64_t row = 0; row < 2; ++row) {
      int64_t off = 0;
      for (int64_t k = 0; k < r.rows[row].examples; ++k, ++e) {
        const int64_t n = static_cast<int64_t>(es[e].targets.size());
        packed_logits[e].assign(lg.begin() + (row * T + off) * V,
                                lg.begin() + (row * T + off + n) * V);
        off += n;
      }
    }
  }

  // Alone: one unpadded example per forward; gradients accumulate over the examples.
  double alone_loss = 0;
  for (size_t e = 0; e < es.size(); ++e) {
    Batch one = make_padded_batch({es[e]}, PaddedBatchOptions{});
    T5Output ao = m.forward(one.inputs);
    const double n = static_cast<double>(es[e].targets.size());
    (ao.loss * n).backward();
    alone_loss += ao.loss.item() * n;
    sp::testing::expect_values(ao.logits, packed_logits[e], 1e-5);
  }
  EXPECT_NEAR(packed_loss, alone_loss, 1e-5 * std::abs(alone_loss));
  for (auto& [name, p] : m.named_parameters()) {
    const std::vector<double> g = p.grad().to_vector<double>();
    const std::vector<double>& want = packed_grads[name];
    double err = 0, scale = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      err = std::max(err, std::abs(g[i] - want[i]));
      scale = std::max(scale, std::abs(g[i]));
    }
    EXPECT_LE(err, 1e-5 * std::max(scale, 1.0)) << name;
  }
}

TEST_P(PackedT5, padding_tokens_do_not_change_results) {
  const T5Config c = tiny_t5_config(GetParam());
  T5ForConditionalGeneration m(c);
  Generator gen(12);
  m.init_weights(&gen);
  m.eval();
  PackingOptions o;
  o.inputs_length = 14;
  o.targets_length = 9;
  Batch b = make_packed_batch(pack_examples({ex(2, 5, 3), ex(11, 4, 4)}, o), o);
  T5Output base = m.forward(b.inputs);
  // Other ids at every padding position (segment 0) of the encoder and decoder.
  T5Inputs noisy = b.inputs;
  I64 ids = noisy.input_ids.to_vector<int64_t>();
  const I64 seg = noisy.encoder_segment_ids.to_vector<int64_t>();
  for (size_t i = 0; i < ids.size(); ++i)
    if (seg[i] == 0) ids[i] = 30 + static_cast<int64_t>(i % 7);
  noisy.input_ids = Tensor::from_vector(ids, noisy.input_ids.shape());
  I64 dec = m.shift_right(noisy.labels, noisy.decoder_segment_ids).to_vector<int64_t>();
  const I64 dseg = noisy.decoder_segment_ids.to_vector<int64_t>();
  for (size_t i = 0; i < dec.size(); ++i)
    if (dseg[i] == 0) dec[i] = 25 + static_cast<int64_t>(i % 5);
  noisy.decoder_input_ids = Tensor::from_vector(dec, noisy.labels.shape());
  T5Output out = m.forward(noisy);
  EXPECT_NEAR(out.loss.item(), base.loss.item(), 1e-6);
  const std::vector<double> a = base.logits.to_vector<double>(), z = out.logits.to_vector<double>();
  for (size_t t = 0; t < dseg.size(); ++t) {
    if (dseg[t] == 0) continue;
    for (int64_t v = 0; v < c.vocab_size; ++v)
      ASSERT_NEAR(z[t * c.vocab_size + v], a[t * c.vocab_size + v], 1e-6) << "token " << t;
  }
  for (double x : z) ASSERT_TRUE(std::isfinite(x));
}

TEST_P(PackedT5, per_row_positions_when_they_do_not_follow_indices) {
  // A padding token inside the first example's encoder tokens: its positions skip it, so
  // position differences are not index differences and each row gets its own bias.
  const T5Config c = tiny_t5_config(GetParam());
  T5ForConditionalGeneration m(c);
  Generator gen(13);
  m.init_weights(&gen);
  m.eval();
  const Seq2SeqExample e = ex(2, 5, 3), f = ex(11, 3, 2);
  T5Inputs in;
  in.input_ids = Tensor::from_vector<int64_t>({2, 3, 0, 4, 5, 1, 11, 12, 1, 0}, Shape{1, 10});
  in.encoder_segment_ids =
      Tensor::from_vector<int64_t>({1, 1, 0, 1, 1, 1, 2, 2, 2, 0}, Shape{1, 10});
  in.encoder_positions = Tensor::from_vector<int64_t>({0, 1, 0, 2, 3, 4, 0, 1, 2, 0}, Shape{1, 10});
  in.attention_mask = Tensor::from_vector<int64_t>({1, 1, 0, 1, 1, 1, 1, 1, 1, 0}, Shape{1, 10});
  in.labels = Tensor::from_vector<int64_t>({9, 10, 1, 18, 1, -100}, Shape{1, 6});
  in.decoder_segment_ids = Tensor::from_vector<int64_t>({1, 1, 1, 2, 2, 0}, Shape{1, 6});
  EXPECT_FALSE(positions_follow_indices({in.encoder_segment_ids, in.encoder_positions}));
  EXPECT_TRUE(positions_follow_indices(
      {in.decoder_segment_ids, segment_positions(in.decoder_segment_ids)}));
  const std::vector<double> lg = m.forward(in).logits.to_vector<double>();
  const int64_t V = c.vocab_size;
  T5Output ae = m.forward(make_padded_batch({e}, PaddedBatchOptions{}).inputs);
  T5Output af = m.forward(make_padded_batch({f}, PaddedBatchOptions{}).inputs);
  sp::testing::expect_values(ae.logits, std::vector<double>(lg.begin(), lg.begin() + 3 * V), 1e-5);
  sp::testing::expect_values(af.logits, std::vector<double>(lg.begin() + 3 * V, lg.begin() + 5 * V),
                             1e-5);
}

TEST(PackedT5Bf16, packed_rows_run_in_bf16) {
  // The segment masks in bf16 (its lowest finite value) keep every row finite and the
  // loss close to the f32 one.
  T5ForConditionalGeneration m(tiny_t5_config(true));
  Generator gen(14);
  m.init_weights(&gen);
  m.eval();
  PackingOptions o;
  o.inputs_length = 16;
  o.targets_length = 10;
  Batch b = make_packed_batch(pack_examples({ex(2, 5, 3), ex(11, 3, 5), ex(17, 6, 2)}, o), o);
  const double ref = m.forward(b.inputs).loss.item();
  m.to(DType::bf16);
  T5Output out = m.forward(b.inputs);
  EXPECT_EQ(out.logits.dtype(), DType::bf16);
  for (double v : out.logits.to_vector<double>()) ASSERT_TRUE(std::isfinite(v));
  EXPECT_NEAR(out.loss.item(), ref, 0.05 * ref);
}

TEST(PackedT5Errors, both_sides_or_neither) {
  T5ForConditionalGeneration m(tiny_t5_config(false));
  PackingOptions o;
  o.inputs_length = 6;
  o.targets_length = 4;
  Batch b = make_packed_batch(pack_examples({ex(2, 3, 2)}, o), o);
  T5Inputs in = b.inputs;
  in.decoder_segment_ids = Tensor();
  EXPECT_THROW_MSG(m.forward(in),
                   "[T5] packed rows need both encoder_segment_ids and "
                   "decoder_segment_ids, got only encoder_segment_ids");
  in = b.inputs;
  in.encoder_positions = Tensor::from_vector<int64_t>({0, 1, 9, 0, 0, 0}, Shape{1, 6});
  EXPECT_THROW_MSG(m.forward(in), "[T5] encoder position 9 is outside [0, 6)");
}

INSTANTIATE_TEST_SUITE_P(Ffn, PackedT5, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "gated" : "relu"; });

}  // namespace
}  // namespace sp
