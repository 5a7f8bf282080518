// CpuBackend::matmul: oneDNN (cached primitives) for f32 and bf16 (widened to f32 on CPUs
// whose oneDNN has no bf16 matmul), a plain loop for f64 (gradcheck) and f16.
//
// Transposed operands and broadcast batch dims reach oneDNN as memory-descriptor strides,
// never as copies. Layouts oneDNN would only run on its reference kernel (neither of the
// last two strides 1, a batch dim with stride 1, ...) are copied to a dense layout first;
// that decision is made once per layout and cached with the primitive.
#include <cmath>
#include <vector>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/onednn.h"
#include "tensor/cpu/parallel.h"
#include "tensor/kernels.h"

namespace sp::cpu {
namespace {

// One operand's dims and strides, left-padded to the output's rank.
struct Layout {
  int64_t dims[kMaxDims];
  int64_t strides[kMaxDims];
};

Layout padded_layout(const Tensor& t, int rank) {
  Layout l;
  const int pad = rank - t.dim();
  for (int i = 0; i < rank; ++i) {
    l.dims[i] = i < pad ? 1 : t.shape()[i - pad];
    l.strides[i] = i < pad ? 0 : t.strides()[i - pad];
  }
  return l;
}

bool is_broadcast(const Layout& l, int i) { return l.dims[i] == 1 || l.strides[i] == 0; }

// The views oneDNN is given: a batch dim an operand broadcasts becomes size 1 in it.
// Where both broadcast a dim the output has (expanded inputs), a keeps the expansion, and
// the stride 0 there sends it to a dense copy (a oneDNN dst dim must come from an input).
void effective_layouts(Layout& a, Layout& b, const Shape& out_shape, int rank) {
  for (int i = 0; i < rank - 2; ++i) {
    const bool ab = is_broadcast(a, i), bb = is_broadcast(b, i);
    if (ab && !(bb && out_shape[i] > 1)) {
      a.dims[i] = 1;
      a.strides[i] = 0;
    }
    if (ab && bb && out_shape[i] > 1) {
      a.dims[i] = out_shape[i];
      a.strides[i] = 0;
    }
    if (bb) {
      b.dims[i] = 1;
      b.strides[i] = 0;
    }
  }
}

// Matrix [rows, cols] with strides (sr, sc). oneDNN runs row-major (sc == 1, sr >= cols)
// and column-major (sr == 1, sc >= rows) layouts; size-1 dims get a dense stride so that
// equal layouts make equal keys.
bool canonical_matrix(int64_t rows, int64_t cols, int64_t& sr, int64_t& sc) {
  if (rows == 1 && cols == 1) {
    sr = sc = 1;
    return true;
  }
  if (cols == 1) {
    sc = 1;
    return sr >= 1;
  }
  if (rows == 1) {
    if (sc == 1) {
      sr = cols;
      return true;
    }
    sr = 1;
    return sc >= 1;
  }
  return (sc == 1 && sr >= cols) || (sr == 1 && sc >= rows);
}

// Whether the operand is dense row-major, or dense with its last two dims swapped (x.mT()
// of a contiguous x), ignoring size-1 dims.
bool is_plain(const Layout& l, int rank) {
  for (int swap = 0; swap < 2; ++swap) {
    int order[kMaxDims];
    for (int i = 0; i < rank; ++i) order[i] = i;
    if (swap) std::swap(order[rank - 1], order[rank - 2]);
    int64_t expected = 1;
    bool dense = true;
    for (int j = rank - 1; j >= 0; --j) {
      const int i = order[j];
      if (l.dims[i] == 1) continue;
      if (l.strides[i] != expected) dense = false;
      expected *= l.dims[i];
    }
    if (dense) return true;
  }
  return false;
}

Layout dense_layout(const Layout& l, int rank) {
  Layout d = l;
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; --i) {
    d.strides[i] = s;
    s *= l.dims[i];
  }
  return d;
}

struct Validity {
  bool a = true;
  bool b = true;
};

// Fills key's dims and strides from the operands' layouts: canonical matrix strides, batch
// dims the output does not have dropped, and batch dims that only a has folded into M
// (x[B, T, K] @ w[K, N] is one [B*T, K] @ [K, N] product, not B small ones).
Validity describe(Layout a, Layout b, const Shape& out_shape, int rank, MatmulKey& key) {
  Validity v;
  const int r = rank;
  v.a = canonical_matrix(a.dims[r - 2], a.dims[r - 1], a.strides[r - 2], a.strides[r - 1]);
  v.b = canonical_matrix(b.dims[r - 2], b.dims[r - 1], b.strides[r - 2], b.strides[r - 1]);
  for (int i = 0; i < r - 2; ++i) {
    if (a.dims[i] > 1 && a.strides[i] <= 0) v.a = false;
    if (b.dims[i] > 1 && b.strides[i] <= 0) v.b = false;
  }

  // Batch dims the output has, outermost first.
  int64_t ad[kMaxDims], as[kMaxDims], bd[kMaxDims], bs[kMaxDims], cd[kMaxDims];
  int n = 0;
  for (int i = 0; i < r - 2; ++i) {
    if (out_shape[i] == 1) continue;
    ad[n] = a.dims[i], as[n] = a.strides[i], bd[n] = b.dims[i], bs[n] = b.strides[i];
    cd[n] = out_shape[i];
    ++n;
  }
  int64_t m = out_shape[r - 2];
  const int64_t a_ld = a.strides[r - 2];
  const bool a_row_major = a.strides[r - 1] == 1;
  while (n > 0 && bd[n - 1] == 1 && a_row_major && as[n - 1] == m * a_ld) {
    m *= ad[n - 1];
    --n;
  }
  const int nd = n + 2;
  for (int i = 0; i < n; ++i) {
    key.a_dims[i] = ad[i], key.a_strides[i] = as[i];
    key.b_dims[i] = bd[i], key.b_strides[i] = bs[i];
    key.c_dims[i] = cd[i];
  }
  key.a_dims[n] = m, key.a_dims[n + 1] = a.dims[r - 1];
  key.a_strides[n] = a_ld, key.a_strides[n + 1] = a.strides[r - 1];
  key.b_dims[n] = b.dims[r - 2], key.b_dims[n + 1] = b.dims[r - 1];
  key.b_strides[n] = b.strides[r - 2], key.b_strides[n + 1] = b.strides[r - 1];
  key.c_dims[n] = m, key.c_dims[n + 1] = out_shape[r - 1];

  // A size-1 batch dim (broadcast) gets the stride just past everything inside it.
  for (auto [dims, strides] :
       {std::pair{key.a_dims, key.a_strides}, std::pair{key.b_dims, key.b_strides}}) {
    int64_t extent = std::max(dims[nd - 2] * strides[nd - 2], dims[nd - 1] * strides[nd - 1]);
    for (int i = nd - 3; i >= 0; --i) {
      if (dims[i] == 1) {
        strides[i] = extent;
      } else {
        extent = std::max(extent, dims[i] * strides[i]);
      }
    }
  }
  key.ndims = static_cast<uint8_t>(nd);
  return v;
}

dnnl::memory::dims to_dims(const int64_t* p, int n) { return dnnl::memory::dims(p, p + n); }

dnnl::memory::dims dense_strides(const dnnl::memory::dims& dims) {
  dnnl::memory::dims s(dims.size());
  int64_t acc = 1;
  for (int i = static_cast<int>(dims.size()) - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}

// Builds the primitive for key; an empty primitive when oneDNN has no implementation.
MatmulPlan build_plan(const MatmulKey& key) {
  using dnnl::memory;
  MatmulPlan plan;
  const int nd = key.ndims;
  const auto dt = static_cast<memory::data_type>(key.dtype);
  const memory::dims c_dims = to_dims(key.c_dims, nd);
  try {
    const memory::desc a_md(to_dims(key.a_dims, nd), dt, to_dims(key.a_strides, nd));
    const memory::desc b_md(to_dims(key.b_dims, nd), dt, to_dims(key.b_strides, nd));
    const memory::desc c_md(c_dims, dt, dense_strides(c_dims));
    memory::desc bias_md;
    const bool has_bias = key.bias_dtype != 0;
    if (has_bias) {
      memory::dims bias_dims(nd, 1);
      bias_dims[nd - 1] = c_dims[nd - 1];
      bias_md = memory::desc(bias_dims, static_cast<memory::data_type>(key.bias_dtype),
                             dense_strides(bias_dims));
    }
    float alpha;
    std::memcpy(&alpha, &key.alpha_bits, 4);
    dnnl::primitive_attr attr;
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    dnnl::post_ops ops;
    int num_ops = 0;
    if (key.flags & MatmulKey::kAccumulate) {
      ops.append_sum(1.0f);
      ++num_ops;
    }
    const bool bias_post_op = has_bias && (key.flags & MatmulKey::kBiasPostOp);
    if (bias_post_op) {
      // The output scale applies to bias too when it is the primitive's bias argument.
      ops.append_binary(dnnl::algorithm::binary_add, bias_md);
      plan.bias_arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(num_ops) | DNNL_ARG_SRC_1;
    } else if (has_bias) {
      plan.bias_arg = DNNL_ARG_BIAS;
    }
    attr.set_post_ops(ops);
    const dnnl::matmul::desc desc = has_bias && !bias_post_op
                                        ? dnnl::matmul::desc(a_md, b_md, bias_md, c_md)
                                        : dnnl::matmul::desc(a_md, b_md, c_md);
    dnnl::matmul::primitive_desc pd(desc, attr, onednn_engine(), /*allow_empty=*/true);
    if (!pd) return plan;
    plan.impl = pd.impl_info_str();
    plan.primitive = dnnl::matmul(pd);
    const dnnl::engine& eng = onednn_engine();
    plan.src = memory(a_md, eng, DNNL_MEMORY_NONE);
    plan.weights = memory(b_md, eng, DNNL_MEMORY_NONE);
    plan.dst = memory(c_md, eng, DNNL_MEMORY_NONE);
    if (has_bias) plan.bias = memory(bias_md, eng, DNNL_MEMORY_NONE);
  } catch (const dnnl::error&) {
    return MatmulPlan{};
  }
  return plan;
}

bool usable(const MatmulPlan& p) { return p.primitive && p.impl.rfind("ref", 0) != 0; }

// Picks the layouts to run: as given when oneDNN has a fast kernel for them, else the
// non-plain operands copied dense, else both copied dense.
MatmulPlan make_plan(const Layout& a, const Layout& b, const Shape& out_shape, int rank,
                     const MatmulKey& key, Validity valid) {
  if (valid.a && valid.b) {
    MatmulPlan plan = build_plan(key);
    if (usable(plan)) return plan;
  }
  for (int stage = 0; stage < 2; ++stage) {
    const bool copy_a = stage == 1 || !valid.a || !is_plain(a, rank);
    const bool copy_b = stage == 1 || !valid.b || !is_plain(b, rank);
    if (stage == 0 && !copy_a && !copy_b) continue;
    MatmulKey k;
    k.alpha_bits = key.alpha_bits, k.dtype = key.dtype, k.bias_dtype = key.bias_dtype;
    k.flags = key.flags;
    describe(copy_a ? dense_layout(a, rank) : a, copy_b ? dense_layout(b, rank) : b, out_shape,
             rank, k);
    MatmulPlan plan = build_plan(k);
    plan.copy_a = copy_a;
    plan.copy_b = copy_b;
    if (usable(plan) || (stage == 1 && plan.primitive)) return plan;
  }
  fail(str_cat("[matmul] oneDNN has no matmul for a ", out_shape, " output of dtype ",
               static_cast<int>(key.dtype)));
}

// A dense copy of the operand's effective view (broadcast dims stay size 1).
Tensor dense_copy(const Tensor& t, const Layout& l, int rank) {
  count_matmul_layout_copy();
  Tensor view =
      t.as_strided(Shape(l.dims, l.dims + rank), Shape(l.strides, l.strides + rank), t.offset());
  Tensor out = Tensor::empty(view.shape(), t.dtype(), t.device());
  kernels::copy_(out, view);
  return out;
}

// Below this many multiply-adds a product takes a few microseconds on one core, less than
// waking the second thread costs, so its primitive is built and run single-threaded. oneDNN
// fixes a primitive's thread count when it is built; the plan cache is keyed by shape, so a
// shape always gets the same setting.
constexpr int64_t kSingleThreadMacs = int64_t{1} << 18;

class SingleThreadScope {
 public:
  explicit SingleThreadScope(bool active) : active_(active && omp_get_max_threads() > 1) {
    if (active_) {
      saved_ = omp_get_max_threads();
      omp_set_num_threads(1);
    }
  }
  ~SingleThreadScope() {
    if (active_) omp_set_num_threads(saved_);
  }
  SingleThreadScope(const SingleThreadScope&) = delete;
  SingleThreadScope& operator=(const SingleThreadScope&) = delete;

 private:
  bool active_;
  int saved_ = 1;
};

void onednn_matmul(Tensor& out, const Tensor& a, const Tensor& b, const MatmulParams& p) {
  const SingleThreadScope single_thread(out.numel() * a.size(-1) < kSingleThreadMacs);
  const int rank = out.dim();
  Layout la = padded_layout(a, rank), lb = padded_layout(b, rank);
  effective_layouts(la, lb, out.shape(), rank);

  MatmulKey key;
  key.dtype = static_cast<uint8_t>(onednn_dtype(out.dtype(), "matmul"));
  const bool has_bias = p.bias != nullptr;
  if (has_bias) key.bias_dtype = static_cast<uint8_t>(onednn_dtype(p.bias->dtype(), "matmul"));
  std::memcpy(&key.alpha_bits, &p.alpha, 4);
  if (p.accumulate) key.flags |= MatmulKey::kAccumulate;
  if (has_bias && p.alpha != 1.0f) key.flags |= MatmulKey::kBiasPostOp;
  const Validity valid = describe(la, lb, out.shape(), rank, key);

  MatmulPlanCache& cache = matmul_plan_cache();
  MatmulPlan* plan = cache.find(key);
  if (plan == nullptr) plan = &cache.insert(key, make_plan(la, lb, out.shape(), rank, key, valid));

  Tensor ca, cb;  // keep copies alive through execution
  const void* pa = a.data_ptr();
  const void* pb = b.data_ptr();
  if (plan->copy_a) {
    ca = dense_copy(a, la, rank);
    pa = ca.data_ptr();
  }
  if (plan->copy_b) {
    cb = dense_copy(b, lb, rank);
    pb = cb.data_ptr();
  }
  plan->src.set_data_handle(const_cast<void*>(pa));
  plan->weights.set_data_handle(const_cast<void*>(pb));
  plan->dst.set_data_handle(out.data_ptr());
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, plan->src.get()},
                             {DNNL_ARG_WEIGHTS, plan->weights.get()},
                             {DNNL_ARG_DST, plan->dst.get()},
                             {0, nullptr}};
  int nargs = 3;
  if (has_bias) {
    plan->bias.set_data_handle(p.bias->data_ptr());
    args[nargs++] = {plan->bias_arg, plan->bias.get()};
  }
  dnnl::stream& stream = onednn_stream();
  const dnnl_status_t st = dnnl_primitive_execute(plan->primitive.get(), stream.get(), nargs, args);
  SP_CHECK(st == dnnl_success, "[matmul] oneDNN execution failed with status ",
           static_cast<int>(st), " for output ", out.shape());
  dnnl_stream_wait(stream.get());
}

// out[.., M, N] = alpha * a @ b (+ bias) (+ out): one output row per work item, a row of
// fp32/f64 accumulators walked along b's rows (contiguous in N for the usual layouts).
template <typename T>
void loop_matmul(Tensor& out, const Tensor& a, const Tensor& b, const MatmulParams& p) {
  using C = compute_t<T>;
  const int rank = out.dim();
  Layout la = padded_layout(a, rank), lb = padded_layout(b, rank);
  for (int i = 0; i < rank - 2; ++i) {
    if (la.dims[i] == 1) la.strides[i] = 0;
    if (lb.dims[i] == 1) lb.strides[i] = 0;
  }
  const int64_t M = out.shape()[rank - 2], N = out.shape()[rank - 1];
  const int64_t K = la.dims[rank - 1];
  const int64_t sam = la.strides[rank - 2], sak = la.strides[rank - 1];
  const int64_t sbk = lb.strides[rank - 2], sbn = lb.strides[rank - 1];
  const T* A = static_cast<const T*>(a.data_ptr());
  const T* B = static_cast<const T*>(b.data_ptr());
  T* O = static_cast<T*>(out.data_ptr());
  std::vector<C> bias(N, C(0));
  if (p.bias != nullptr) {
    const std::vector<double> v = p.bias->to_vector<double>();
    for (int64_t n = 0; n < N; ++n) bias[n] = static_cast<C>(v[n]);
  }
  const C alpha = static_cast<C>(p.alpha);
  const int64_t rows = out.numel() / N;
  parallel_for(rows, N * std::max<int64_t>(K, 1), [&](int64_t begin, int64_t end) {
    std::vector<C> acc(N);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t m = row % M;
      int64_t batch = row / M, off_a = 0, off_b = 0;
      for (int i = rank - 3; i >= 0; --i) {
        const int64_t idx = batch % out.shape()[i];
        batch /= out.shape()[i];
        off_a += idx * la.strides[i];
        off_b += idx * lb.strides[i];
      }
      std::fill(acc.begin(), acc.end(), C(0));
      const T* arow = A + off_a + m * sam;
      for (int64_t k = 0; k < K; ++k) {
        const C av = static_cast<C>(arow[k * sak]);
        const T* brow = B + off_b + k * sbk;
        for (int64_t n = 0; n < N; ++n) acc[n] += av * static_cast<C>(brow[n * sbn]);
      }
      T* orow = O + row * N;
      for (int64_t n = 0; n < N; ++n) {
        C v = alpha * acc[n] + bias[n];
        if (p.accumulate) v += static_cast<C>(orow[n]);
        orow[n] = static_cast<T>(v);
      }
    }
  });
}

thread_local bool force_widening = false;

// x converted to f32 in one linear pass where its layout allows: a transposed view (x.mT()
// of a dense tensor, as in x @ W^T) stays transposed, and broadcast (stride 0) dims stay
// broadcast, so each value is converted once.
Tensor widened(const Tensor& x) {
  if (x.dim() >= 2 && !x.is_contiguous()) {
    const Tensor t = kernels::transpose(x, x.dim() - 2, x.dim() - 1);
    if (t.is_contiguous())
      return kernels::transpose(kernels::cast(t, DType::f32), x.dim() - 2, x.dim() - 1);
  }
  Shape compact = x.shape();
  for (int i = 0; i < x.dim(); ++i)
    if (x.strides()[i] == 0) compact[i] = 1;
  const Tensor f32 = kernels::cast(x.as_strided(compact, x.strides(), x.offset()), DType::f32);
  return kernels::expand(f32, x.shape());
}

// A bf16 product on the f32 kernels (see onednn_has_bf16_matmul): what oneDNN's bf16
// kernels compute, up to the order of the f32 sums. out is contiguous.
void widened_bf16_matmul(Tensor& out, const Tensor& a, const Tensor& b, const MatmulParams& p) {
  const Tensor a32 = widened(a), b32 = widened(b);
  Tensor out32 = p.accumulate ? kernels::cast(out, DType::f32)
                              : Tensor::empty(out.shape(), DType::f32, out.device());
  Tensor bias32;
  MatmulParams q = p;
  if (p.bias != nullptr) {
    bias32 = kernels::cast(*p.bias, DType::f32);
    q.bias = &bias32;
  }
  onednn_matmul(out32, a32, b32, q);
  kernels::copy_(out, out32);
}

// out = alpha * a @ b (+ bias) (+ out if accumulate), without an epilogue.
void plain_matmul(Tensor& out, const Tensor& a, const Tensor& b, const MatmulParams& p) {
  const int64_t K = a.shape().back();
  const DType dt = out.dtype();
  if (dt == DType::bf16 && K > 0 && (force_widening || !onednn_has_bf16_matmul())) {
    widened_bf16_matmul(out, a, b, p);
    return;
  }
  if ((dt == DType::f32 || dt == DType::bf16) && K > 0) {
    onednn_matmul(out, a, b, p);
    return;
  }
  SP_DISPATCH_FLOAT(dt, "matmul", [&]<typename T>() { loop_matmul<T>(out, a, b, p); });
}

}  // namespace

bool onednn_has_bf16_matmul() {
  static const bool has = [] {
    // A dense 16 x 16 product: the layout every kernel takes.
    MatmulKey key;
    key.ndims = 2;
    key.dtype = static_cast<uint8_t>(dnnl::memory::data_type::bf16);
    const float one = 1.0f;
    std::memcpy(&key.alpha_bits, &one, 4);
    for (int64_t* dims : {key.a_dims, key.b_dims, key.c_dims}) dims[0] = dims[1] = 16;
    for (int64_t* strides : {key.a_strides, key.b_strides}) strides[0] = 16, strides[1] = 1;
    return usable(build_plan(key));
  }();
  return has;
}

void force_widened_bf16_matmul(bool on) { force_widening = on; }

// out: [..., M, N] contiguous; a: [..., M, K], b: [..., K, N], batch dims broadcast to out's.
// The gelu epilogues are a pass after the product, through the same elementwise code as
// the gelu_tanh unary and its backward, so the fused op equals the unfused ops.
void CpuBackend::matmul(Tensor& out, const Tensor& a, const Tensor& b, const MatmulParams& p) {
  if (out.numel() == 0) return;
  if (p.epilogue == Epilogue::none) {
    plain_matmul(out, a, b, p);
    return;
  }
  MatmulParams q = p;
  q.epilogue = Epilogue::none;
  q.aux = nullptr;
  Tensor& aux = *p.aux;
  if (p.epilogue == Epilogue::gelu_tanh) {
    // aux = pre-activation, out = gelu_tanh(aux)
    if (p.accumulate) kernels::copy_(aux, out);
    plain_matmul(aux, a, b, q);
    unary(UnaryOp::gelu_tanh, out, aux, UnaryParams{});
    return;
  }
  // out = pre * gelu_tanh'(aux)
  plain_matmul(out, a, b, q);
  activation_backward(ActivationGrad::gelu_tanh, out, out, aux);
}

}  // namespace sp::cpu
