// kernels::matmul, kernels::matmul_into: argument checks, 1-D operands, the output.
#include <atomic>

#include "tensor/kernels.h"
#include "tensor/kernels/matmul_stats.h"

namespace sp {
namespace {

std::atomic<Fp32Matmul> g_fp32_matmul{Fp32Matmul::strict};

}  // namespace

void set_fp32_matmul(Fp32Matmul mode) { g_fp32_matmul.store(mode, std::memory_order_relaxed); }
Fp32Matmul fp32_matmul() { return g_fp32_matmul.load(std::memory_order_relaxed); }

}  // namespace sp

namespace sp::kernels {
namespace {

std::atomic<int64_t> g_calls{0};
std::atomic<int64_t> g_flops{0};

struct Prepared {
  Tensor a, b;          // at least 2-D, left-padded with size-1 dims to the output's rank
  Shape full;           // [..., M, N]
  Shape result;         // full without the dims that 1-D operands do not have
  MatmulParams params;  // p, with bias and aux pointing at the tensors below
  Tensor bias;          // a contiguous copy of *p.bias
  Tensor aux;           // *p.aux viewed with the full shape

  MatmulParams backend_params() {
    MatmulParams q = params;
    q.bias = bias.defined() ? &bias : nullptr;
    q.aux = aux.defined() ? &aux : nullptr;
    return q;
  }
};

const char* epilogue_name(Epilogue e) {
  switch (e) {
    case Epilogue::none: return "none";
    case Epilogue::gelu_tanh: return "gelu_tanh";
    case Epilogue::dgelu_tanh: return "dgelu_tanh";
  }
  return "unknown";
}

// x: [d0, .., dn] -> [1, .., 1, d0, .., dn] with rank dims.
Tensor pad_left(const Tensor& x, int rank) {
  if (x.dim() == rank) return x;
  Shape shape, strides;
  for (int i = x.dim(); i < rank; ++i) shape.push_back(1), strides.push_back(0);
  for (int i = 0; i < x.dim(); ++i)
    shape.push_back(x.shape()[i]), strides.push_back(x.strides()[i]);
  return x.as_strided(shape, strides, x.offset());
}

Tensor contiguous_view(const Tensor& x, const Shape& shape) {
  return x.as_strided(shape, contiguous_strides(shape), x.offset());
}

// aux: the result's shape, a's dtype and device, contiguous. For gelu_tanh an undefined
// *p.aux is allocated here (it is an output); dgelu_tanh reads it, so it must be given.
void prepare_aux(Prepared& pr, const Tensor& a, const MatmulParams& p) {
  if (p.epilogue == Epilogue::none) {
    SP_CHECK(p.aux == nullptr, "[matmul] aux is given but the epilogue is none: only ",
             "gelu_tanh and dgelu_tanh use it");
    return;
  }
  SP_CHECK(p.epilogue == Epilogue::gelu_tanh || p.epilogue == Epilogue::dgelu_tanh,
           "[matmul] unknown epilogue ", static_cast<int>(p.epilogue));
  const char* name = epilogue_name(p.epilogue);
  SP_CHECK(p.aux != nullptr, "[matmul] epilogue ", name, " needs aux (", pr.result, ")");
  Tensor& aux = *p.aux;
  if (!aux.defined() && p.epilogue == Epilogue::gelu_tanh) {
    aux = Tensor::empty(pr.result, a.dtype(), a.device());
  }
  SP_CHECK(aux.defined(), "[matmul] epilogue ", name, " reads aux, which is undefined");
  SP_CHECK(aux.shape() == pr.result, "[matmul] aux is ", aux.shape(), ", expected ", pr.result,
           " (epilogue ", name, ")");
  SP_CHECK(aux.dtype() == a.dtype(), "[matmul] dtype mismatch: aux is ", dtype_name(aux.dtype()),
           ", a is ", dtype_name(a.dtype()));
  SP_CHECK(aux.device() == a.device(), "[matmul] device mismatch: aux is on ", aux.device(),
           ", a is on ", a.device());
  SP_CHECK(aux.is_contiguous(), "[matmul] aux must be contiguous, got ", describe(aux));
  pr.aux = contiguous_view(aux, pr.full);
}

// a: [..., M, K] or [K], b: [..., K, N] or [K] -> the operands as the backend takes them.
Prepared prepare(const Tensor& a, const Tensor& b, const MatmulParams& p) {
  SP_CHECK(a.defined() && b.defined(), "[matmul] undefined operand: a is ",
           a.defined() ? describe(a) : "undefined", ", b is ",
           b.defined() ? describe(b) : "undefined");
  SP_CHECK(a.dim() >= 1 && b.dim() >= 1, "[matmul] operands need at least 1 dim: a is ", a.shape(),
           ", b is ", b.shape());
  SP_CHECK(a.device() == b.device(), "[matmul] device mismatch: a is on ", a.device(), ", b is on ",
           b.device());
  SP_CHECK(a.dtype() == b.dtype(), "[matmul] dtype mismatch: a is ", dtype_name(a.dtype()),
           ", b is ", dtype_name(b.dtype()));
  SP_CHECK(is_floating(a.dtype()), "[matmul] unsupported dtype ", dtype_name(a.dtype()),
           ": expected f32, bf16, f16 or f64");

  Prepared pr;
  // A 1-D a is a row [1, K], a 1-D b a column [K, 1]; the result drops that dim.
  pr.a = a.dim() == 1 ? a.as_strided(Shape{1, a.numel()},
                                     Shape{a.numel() * a.strides()[0], a.strides()[0]}, a.offset())
                      : a;
  pr.b = b.dim() == 1 ? b.as_strided(Shape{b.numel(), 1}, Shape{b.strides()[0], 1}, b.offset()) : b;
  const Shape& as = pr.a.shape();
  const Shape& bs = pr.b.shape();
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  SP_CHECK(K == bs[bs.size() - 2], "[matmul] inner dims differ: a is ", a.shape(), ", b is ",
           b.shape());

  const int na = as.size() - 2, nb = bs.size() - 2, n = std::max(na, nb);
  int64_t batch = 1;
  for (int i = 0; i < n; ++i) {
    const int64_t da = i - (n - na) >= 0 ? as[i - (n - na)] : 1;
    const int64_t db = i - (n - nb) >= 0 ? bs[i - (n - nb)] : 1;
    SP_CHECK(da == db || da == 1 || db == 1, "[matmul] batch dims do not broadcast: a is ",
             a.shape(), ", b is ", b.shape());
    pr.full.push_back(std::max(da, db));
    batch *= pr.full.back();
  }
  pr.full.push_back(M);
  pr.full.push_back(N);
  pr.result = pr.full;
  if (b.dim() == 1) pr.result.pop_back();
  if (a.dim() == 1) pr.result.erase(pr.result.size() - (b.dim() == 1 ? 1 : 2));
  pr.a = pad_left(pr.a, pr.full.size());
  pr.b = pad_left(pr.b, pr.full.size());

  pr.params = p;
  if (p.bias != nullptr) {
    const Tensor& bias = *p.bias;
    SP_CHECK(bias.defined() && bias.dim() == 1 && bias.numel() == N,
             "[matmul] bias must be [N] = [", N, "], got ",
             bias.defined() ? str_cat(bias.shape()) : std::string("undefined"));
    SP_CHECK(bias.device() == a.device(), "[matmul] device mismatch: bias is on ", bias.device(),
             ", a is on ", a.device());
    const bool f32_for_16bit =
        bias.dtype() == DType::f32 && (a.dtype() == DType::bf16 || a.dtype() == DType::f16);
    SP_CHECK(bias.dtype() == a.dtype() || f32_for_16bit, "[matmul] dtype mismatch: bias is ",
             dtype_name(bias.dtype()), ", a is ", dtype_name(a.dtype()));
    pr.bias = contiguous(bias);
  }
  prepare_aux(pr, a, p);

  g_calls.fetch_add(1, std::memory_order_relaxed);
  g_flops.fetch_add(2 * batch * M * N * K, std::memory_order_relaxed);
  return pr;
}

}  // namespace

MatmulStats matmul_stats() {
  return {g_calls.load(std::memory_order_relaxed), g_flops.load(std::memory_order_relaxed)};
}

void reset_matmul_stats() {
  g_calls.store(0, std::memory_order_relaxed);
  g_flops.store(0, std::memory_order_relaxed);
}

// a: [..., M, K], b: [..., K, N] -> [..., M, N]
Tensor matmul(const Tensor& a, const Tensor& b, const MatmulParams& p) {
  SP_CHECK(!p.accumulate, "[matmul] accumulate needs an existing output: use matmul_into");
  Prepared pr = prepare(a, b, p);
  Tensor out = Tensor::empty(pr.full, a.dtype(), a.device());
  backend_for(a).matmul(out, pr.a, pr.b, pr.backend_params());
  return pr.result == pr.full ? out : contiguous_view(out, pr.result);
}

// out: [..., M, N] += a @ b
void matmul_into(Tensor& out, const Tensor& a, const Tensor& b, const MatmulParams& p) {
  Prepared pr = prepare(a, b, p);
  SP_CHECK(out.defined(), "[matmul] out is undefined");
  SP_CHECK(out.device() == a.device(), "[matmul] device mismatch: out is on ", out.device(),
           ", a is on ", a.device());
  SP_CHECK(out.dtype() == a.dtype(), "[matmul] dtype mismatch: out is ", dtype_name(out.dtype()),
           ", a is ", dtype_name(a.dtype()));
  SP_CHECK(out.shape() == pr.result, "[matmul] out is ", out.shape(), ", expected ", pr.result);
  Backend& backend = backend_for(a);
  MatmulParams params = pr.backend_params();
  params.accumulate = true;
  if (out.is_contiguous()) {
    Tensor full = contiguous_view(out, pr.full);
    backend.matmul(full, pr.a, pr.b, params);
    out.storage()->bump_version();
    return;
  }
  if (p.epilogue != Epilogue::none) {
    // The epilogue reads out's values: run on a dense copy, then write it back.
    Tensor dense = contiguous_view(clone(out), pr.full);
    backend.matmul(dense, pr.a, pr.b, params);
    copy_(out, contiguous_view(dense, pr.result));
    return;
  }
  // The backend writes dense outputs: compute aside, then add into the strided out.
  Tensor product = Tensor::empty(pr.full, a.dtype(), a.device());
  params.accumulate = false;
  backend.matmul(product, pr.a, pr.b, params);
  copy_(out, binary(BinaryOp::add, out, contiguous_view(product, pr.result)));
}

}  // namespace sp::kernels
