#pragma once
// Backend: one virtual per primitive; backend_for(device) picks the CPU's or the CUDA one.
//
// Kernels see raw pointers, shapes, strides and dtypes, never autograd. The dispatching
// layer (kernels.h) validates arguments and allocates outputs, so a backend may assume:
// outputs are contiguous and of the right shape and dtype; inputs are on this device;
// inputs are contiguous unless a primitive says it accepts strides.
#include <string>
#include <vector>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace sp {

enum class UnaryOp {
  neg,
  exp,
  log,
  sqrt,
  rsqrt,
  tanh,
  sigmoid,
  relu,
  gelu_tanh,
  gelu_erf,
  silu,
  abs,
  square,
  reciprocal,
  pow,     // x ^ p.a
  clamp,   // min(max(x, p.a), p.b)
  affine,  // x * p.a + p.b
};
struct UnaryParams {
  double a = 0;
  double b = 0;
};

// Activations whose backward is fused: dx = dy * f'(x).
enum class ActivationGrad { relu, gelu_tanh, gelu_erf, silu };

enum class BinaryOp {
  add,
  sub,
  mul,
  div,
  maximum,
  minimum,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,  // produce bool
};
inline bool is_comparison(BinaryOp op) { return op >= BinaryOp::eq; }

enum class ReduceOp { sum, mean, max, min, argmax, argmin };
const char* reduce_name(ReduceOp op);  // "sum", "argmax", ...

enum class Distribution { uniform, normal, randint, bernoulli };
struct DistributionParams {
  Distribution kind = Distribution::uniform;
  double a = 0;  // uniform: low; normal: mean; randint: low; bernoulli: p
  double b = 1;  // uniform: high; normal: std; randint: high (exclusive)
};

// What runs on the matmul's result before it is stored. With pre = alpha * a @ b (+ bias)
// (+ out if accumulate), computed in the accumulation type:
//   none:       out = pre
//   gelu_tanh:  aux = pre, out = gelu_tanh(pre) (T5's gelu_new; aux is saved for backward)
//   dgelu_tanh: out = pre * gelu_tanh'(aux) (aux is read: the forward's pre-activation)
// aux has out's shape and dtype and is contiguous.
enum class Epilogue { none, gelu_tanh, dgelu_tanh };

struct MatmulParams {
  const Tensor* bias = nullptr;  // [N], added to every row
  bool accumulate = false;       // out += a @ b (beta = 1) instead of out = a @ b
  float alpha = 1.0f;
  Epilogue epilogue = Epilogue::none;
  Tensor* aux = nullptr;  // gelu_tanh: written; dgelu_tanh: read; unused (null) for none
};

// How f32 matmuls run on the GPU: strict FP32 (the default, matching the CPU) or TF32
// tensor cores (10-bit mantissa products, fp32 accumulation). A process-wide setting,
// read when a matmul is issued; the CPU ignores it.
enum class Fp32Matmul { strict, tf32 };
void set_fp32_matmul(Fp32Matmul mode);
Fp32Matmul fp32_matmul();

// Primitives, for supports() and for tests that loop over every op.
enum class Prim {
  fill,
  copy,
  unary,
  activation_backward,
  binary,
  where,
  reduce,
  matmul,
  softmax,
  softmax_backward,
  rms_norm,
  rms_norm_backward,
  embedding,
  embedding_backward,
  cross_entropy,
  cross_entropy_backward,
  dropout,
  random,
  index_select,
  index_add,
  gather,
  scatter_add,
};
const char* prim_name(Prim p);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual bool supports(Prim prim, DType dtype) const = 0;

  // out = value (any dtype)
  virtual void fill(Tensor& out, double value) { unsupported("fill"); }
  // out = in, converting dtype; in may be strided (views, broadcasts) and on another device.
  virtual void copy(Tensor& out, const Tensor& in) { unsupported("copy"); }
  // out = op(in); in may be strided; float dtypes.
  virtual void unary(UnaryOp op, Tensor& out, const Tensor& in, UnaryParams p) {
    unsupported("unary");
  }
  // dx = dy * f'(x), all contiguous and the same shape.
  virtual void activation_backward(ActivationGrad op, Tensor& dx, const Tensor& dy,
                                   const Tensor& x) {
    unsupported("activation_backward");
  }
  // out = a op b; a and b are already expanded to out's shape (strides may be 0).
  virtual void binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
    unsupported("binary");
  }
  // out = cond ? a : b; all expanded to out's shape (strided).
  virtual void where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
    unsupported("where");
  }
  // Reduces the dims of in whose bit is set in dims_mask; out has in's rank with those
  // dims set to 1 (contiguous). argmax/argmin take exactly one dim and write i64.
  virtual void reduce(ReduceOp op, Tensor& out, const Tensor& in, uint32_t dims_mask) {
    unsupported("reduce");
  }
  // out[..., M, N] = alpha * a[..., M, K] @ b[..., K, N] (+ bias) (+ out if accumulate).
  // a and b may be transposed in their last two dims (one of the two strides is 1) and
  // their batch dims broadcast (stride 0 or size 1); out is contiguous.
  virtual void matmul(Tensor& out, const Tensor& a, const Tensor& b, const MatmulParams& p) {
    unsupported("matmul");
  }
  // Over the last dim, fp32 accumulation. log selects log_softmax.
  virtual void softmax(Tensor& out, const Tensor& in, bool log) { unsupported("softmax"); }
  // softmax(in + bias) over the last dim, in: [..., D] contiguous, bias: expanded to in's
  // shape (strides may be 0; the last is 1 or the dim is 1). The sum is rounded to in's
  // dtype first, so out is bit for bit binary(add) then softmax: what this default does.
  // A backend may fuse the two (the CPU does: the sum never goes to memory).
  virtual void add_softmax(Tensor& out, const Tensor& in, const Tensor& bias);
  // dx from dy and the forward output y.
  virtual void softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, bool log) {
    unsupported("softmax_backward");
  }
  // x: [R, D], weight: [D] or undefined -> out [R, D], rstd [R] (f32; f64 when x or
  // weight is f64). out has weight's dtype, or x's without a weight, as in T5.
  // As T5: the normalised value is cast to weight's dtype before the multiply.
  virtual void rms_norm(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& weight,
                        double eps) {
    unsupported("rms_norm");
  }
  // dx [R, D] (may be undefined), dweight [D] (may be undefined; overwritten).
  virtual void rms_norm_backward(Tensor& dx, Tensor& dweight, const Tensor& dy, const Tensor& x,
                                 const Tensor& weight, const Tensor& rstd) {
    unsupported("rms_norm_backward");
  }
  // weight: [V, D], ids: [N] (i32 or i64) -> out [N, D]. Ids are validated upstream.
  virtual void embedding(Tensor& out, const Tensor& weight, const Tensor& ids) {
    unsupported("embedding");
  }
  // dweight [V, D] += scatter of dy [N, D] rows by ids.
  virtual void embedding_backward(Tensor& dweight, const Tensor& dy, const Tensor& ids) {
    unsupported("embedding_backward");
  }
  // logits: [R, V], targets: [R] i32/i64 -> loss [R] (0 where ignored), lse [R]; both f32,
  // or f64 for f64 logits.
  // loss = lse - logit[target] + z_loss * lse^2.
  virtual void cross_entropy(Tensor& loss, Tensor& lse, const Tensor& logits, const Tensor& targets,
                             int64_t ignore_index, double z_loss) {
    unsupported("cross_entropy");
  }
  // dlogits [R, V] = dloss[r] * d(loss[r])/d(logits[r]); dloss: [R] f32.
  virtual void cross_entropy_backward(Tensor& dlogits, const Tensor& dloss, const Tensor& logits,
                                      const Tensor& targets, const Tensor& lse,
                                      int64_t ignore_index, double z_loss) {
    unsupported("cross_entropy_backward");
  }
  // out = in * keep / (1 - p), keep drawn from Philox at (state, element index):
  // keep = philox_uniform(word) >= p. The same state gives the same mask (backward).
  virtual void dropout(Tensor& out, const Tensor& in, double p, PhiloxState state) {
    unsupported("dropout");
  }
  // Fills out (float or integer) with draws from Philox at state.
  virtual void random(Tensor& out, DistributionParams d, PhiloxState state) {
    unsupported("random");
  }
  // out = in.index_select(dim, index); index i32/i64 [n], validated upstream.
  virtual void index_select(Tensor& out, const Tensor& in, int dim, const Tensor& index) {
    unsupported("index_select");
  }
  // out.index_select(dim, index) += src (duplicates accumulate).
  virtual void index_add(Tensor& out, int dim, const Tensor& index, const Tensor& src) {
    unsupported("index_add");
  }
  // out[i][j][k] = in[i][index[i][j][k]][k] (for dim 1); index has out's shape.
  virtual void gather(Tensor& out, const Tensor& in, int dim, const Tensor& index) {
    unsupported("gather");
  }
  // out[i][index[i][j][k]][k] += src[i][j][k] (for dim 1).
  virtual void scatter_add(Tensor& out, int dim, const Tensor& index, const Tensor& src) {
    unsupported("scatter_add");
  }

 protected:
  [[noreturn]] virtual void unsupported(const char* op) const;
};

// The backends, defined by tensor/cpu/ and by tensor/cuda/ or tensor/no_cuda/.
Backend& cpu_backend();
Backend& cuda_backend();
inline Backend& backend_for(DeviceType type) {
  return type == DeviceType::cpu ? cpu_backend() : cuda_backend();
}
inline Backend& backend_for(const Tensor& t) { return backend_for(t.device().type); }
// Whether this build has CUDA support (it may still find no GPU at run time).
bool built_with_cuda();
// Whether a CUDA device can be used now.
bool cuda_available();

}  // namespace sp
