#include "models/t5/segments.h"

#include <limits>
#include <unordered_map>
#include <vector>

namespace sp {

namespace {

bool is_index_dtype(DType t) { return t == DType::i32 || t == DType::i64; }

// Values in dtype's own C++ type, so a [B, 1, T, T] mask is written once, not via double.
template <typename T>
Tensor mask_from(const std::vector<uint8_t>& keep, const Shape& shape, DType dtype) {
  const T low = static_cast<T>(t5_mask_lowest(dtype));
  std::vector<T> v(keep.size());
  for (size_t i = 0; i < keep.size(); ++i) v[i] = keep[i] ? T(0) : low;
  return Tensor::from_vector(v, shape, dtype);
}

}  // namespace

double t5_mask_lowest(DType dtype) {
  switch (dtype) {
    case DType::f32: return std::numeric_limits<float>::lowest();
    case DType::bf16: return -3.3895313892515355e38;  // 0xff7f
    case DType::f16: return -65504.0;
    case DType::f64: return std::numeric_limits<double>::lowest();
    default: fail(str_cat("[T5] attention masks need a floating dtype, got ", dtype_name(dtype)));
  }
}

Tensor segment_positions(const Tensor& segment_ids) {
  SP_CHECK(segment_ids.dim() == 2 && is_index_dtype(segment_ids.dtype()),
           "[T5] segment ids must be [batch, length] i32/i64, got ", describe(segment_ids));
  const int64_t B = segment_ids.size(0), L = segment_ids.size(1);
  const std::vector<int64_t> s = segment_ids.to_vector<int64_t>();
  std::vector<int64_t> p(s.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t) {
      const int64_t i = b * L + t;
      p[i] = (t > 0 && s[i] == s[i - 1]) ? p[i - 1] + 1 : 0;
    }
  return Tensor::from_vector(p, Shape{B, L});
}

T5Segments resolve_segments(const T5Segments& s, int64_t B, int64_t L, const char* side) {
  SP_CHECK(s.segment_ids.defined() || !s.positions.defined(), "[T5] ", side,
           " positions were given without ", side, " segment ids");
  if (!s.packed()) return s;
  SP_CHECK(s.segment_ids.dim() == 2 && s.segment_ids.size(0) == B && s.segment_ids.size(1) == L &&
               is_index_dtype(s.segment_ids.dtype()),
           "[T5] ", side, " segment ids are ", describe(s.segment_ids), ", expected [", B, ", ", L,
           "] i32/i64");
  T5Segments r = s;
  if (!r.positions.defined()) {
    r.positions = segment_positions(r.segment_ids);
  } else {
    SP_CHECK(r.positions.shape() == r.segment_ids.shape() && is_index_dtype(r.positions.dtype()),
             "[T5] ", side, " positions are ", describe(r.positions), ", expected [", B, ", ", L,
             "] i32/i64 like the segment ids");
    for (int64_t v : r.positions.to_vector<int64_t>())
      SP_CHECK(v >= 0 && v < L, "[T5] ", side, " position ", v, " is outside [0, ", L, ")");
  }
  return r;
}

bool positions_follow_indices(const T5Segments& s) {
  if (!s.packed() || !s.positions.defined()) return false;
  const int64_t B = s.segment_ids.size(0), L = s.segment_ids.size(1);
  const std::vector<int64_t> seg = s.segment_ids.to_vector<int64_t>();
  const std::vector<int64_t> pos = s.positions.to_vector<int64_t>();
  std::unordered_map<int64_t, int64_t> offset;  // segment id -> position - index
  for (int64_t b = 0; b < B; ++b) {
    offset.clear();
    for (int64_t t = 0; t < L; ++t) {
      const int64_t i = b * L + t;
      if (seg[i] == 0) continue;  // padding attends to nothing and is seen by nothing
      auto [it, fresh] = offset.try_emplace(seg[i], pos[i] - t);
      if (!fresh && it->second != pos[i] - t) return false;
    }
  }
  return true;
}

Tensor t5_segment_mask(const Tensor& q_seg, const Tensor& k_seg, bool causal,
                       const Tensor& key_mask, DType dtype, Device device) {
  SP_CHECK(q_seg.dim() == 2 && k_seg.dim() == 2 && q_seg.size(0) == k_seg.size(0),
           "[T5] segment ids must be [batch, length] with one batch size, got queries ",
           describe(q_seg), " and keys ", describe(k_seg));
  const int64_t B = q_seg.size(0), Tq = q_seg.size(1), Tk = k_seg.size(1);
  SP_CHECK(!key_mask.defined() || key_mask.shape() == k_seg.shape(), "[T5] attention mask is ",
           describe(key_mask), ", expected [", B, ", ", Tk, "] like the segment ids");
  const std::vector<int64_t> qs = q_seg.to_vector<int64_t>(), ks = k_seg.to_vector<int64_t>();
  std::vector<double> km;
  if (key_mask.defined()) km = key_mask.to_vector<double>();
  std::vector<uint8_t> keep(static_cast<size_t>(B * Tq * Tk));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Tq; ++i) {
      const int64_t q = qs[b * Tq + i];
      uint8_t* row = keep.data() + (b * Tq + i) * Tk;
      for (int64_t j = 0; j < Tk; ++j) {
        const int64_t k = ks[b * Tk + j];
        bool ok = q != 0 && k == q && !(causal && j > i);
        if (ok && key_mask.defined()) ok = km[b * Tk + j] != 0;
        row[j] = ok;
      }
    }
  const Shape shape{B, 1, Tq, Tk};
  Tensor m;
  switch (dtype) {
    case DType::f32: m = mask_from<float>(keep, shape, dtype); break;
    case DType::f64: m = mask_from<double>(keep, shape, dtype); break;
    // bf16 / f16 lowest are exact floats; from_vector rounds exactly onto them.
    default: m = mask_from<float>(keep, shape, dtype); break;
  }
  return device.is_cpu() ? m : m.to(device);
}

Tensor shift_right_segments(const Tensor& labels, const Tensor& segment_ids, int64_t start_id,
                            int64_t pad_id) {
  SP_CHECK(labels.dim() == 2, "[T5] expected labels as [batch, length], got ", describe(labels));
  SP_CHECK(!segment_ids.defined() || segment_ids.shape() == labels.shape(),
           "[T5] decoder segment ids are ", describe(segment_ids), ", expected ", describe(labels),
           " like the labels");
  const int64_t B = labels.size(0), T = labels.size(1);
  const std::vector<int64_t> l = labels.to_vector<int64_t>();
  std::vector<int64_t> seg;
  if (segment_ids.defined()) seg = segment_ids.to_vector<int64_t>();
  std::vector<int64_t> out(l.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = b * T + t;
      const bool first = t == 0 || (!seg.empty() && seg[i] != seg[i - 1]);
      out[i] = first ? start_id : (l[i - 1] == -100 ? pad_id : l[i - 1]);
    }
  Tensor r = Tensor::from_vector(out, Shape{B, T});
  return labels.device().is_cpu() ? r : r.to(labels.device());
}

}  // namespace sp
