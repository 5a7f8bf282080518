// CudaBackend::matmul on cuBLASLt (plans: matmul_plan.h; unfused epilogues:
// matmul_epilogue.h).
//
// out[..., M, N] = epilogue(alpha * a[..., M, K] @ b[..., K, N] (+ bias) (+ out)). Each
// operand's last two dims are row- or column-major (a transposed view): a transpose flag,
// never a copy; an operand that is neither is copied dense first. Batch dims become one
// strided batch where the strides allow (stride 0 for a broadcast operand), the rest a
// loop of launches; a batch that b broadcasts over contiguous rows of a is folded into M
// (x[B, T, K] @ w[K, N] is one [B*T, K] @ [K, N] product, as on the CPU).
//
// cuBLASLt fuses bias, beta = 1, GELU_AUX(+bias) and DGELU. Every other combination (f64,
// an f32 bias on a 16-bit output, a gelu epilogue with accumulate or a batch, unaligned
// aux) computes the product in f32 (f64) and applies the epilogue in our own pass: slower,
// never different.
#include <algorithm>
#include <vector>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/matmul_epilogue.h"
#include "tensor/cuda/matmul_plan.h"
#include "tensor/kernels.h"

namespace sp::cuda {
namespace {

// One operand's matrix: [rows, cols] with a leading dim, row- or column-major.
struct Matrix {
  int64_t ld = 0;
  bool col_major = false;
};

// Whether [rows, cols] with strides (sr, sc) is row-major (sc == 1, sr >= cols) or
// column-major (sr == 1, sc >= rows), giving size-1 dims whichever stride makes it so.
bool as_matrix(int64_t rows, int64_t cols, int64_t sr, int64_t sc, Matrix& m) {
  if (rows == 1 && cols == 1) {
    m = {1, false};
    return true;
  }
  if (cols == 1) {  // a column: row-major with leading dim sr
    m = {sr, false};
    return sr >= 1;
  }
  if (rows == 1) {  // a row
    if (sc == 1) m = {cols, false};
    else m = {sc, true};
    return sc >= 1;
  }
  if (sc == 1 && sr >= cols) {
    m = {sr, false};
    return true;
  }
  if (sr == 1 && sc >= rows) {
    m = {sc, true};
    return true;
  }
  return false;
}

// The batch dims of out (size > 1), outermost first, with each operand's stride there.
struct BatchDim {
  int64_t size, sa, sb, so;
};

struct Problem {
  int64_t m, n, k;
  Matrix a, b;
  // The strided batch (innermost run of mergeable batch dims) and the launch loop outside it.
  int64_t batch = 1, stride_a = 0, stride_b = 0, stride_out = 0;
  std::vector<BatchDim> loops;
};

// Merges the innermost batch dims into one strided batch while each operand's strides
// nest (stride[i] == stride[i + 1] * size[i + 1], which holds for broadcast zeros too),
// then folds that batch into M where b is shared and a's batches are consecutive rows.
void plan_batches(std::vector<BatchDim> dims, Problem& pr) {
  if (!dims.empty()) {
    BatchDim inner = dims.back();
    dims.pop_back();
    int64_t count = inner.size;
    while (!dims.empty()) {
      const BatchDim& d = dims.back();
      if (d.sa != inner.sa * count || d.sb != inner.sb * count || d.so != inner.so * count) break;
      count *= d.size;
      dims.pop_back();
    }
    pr.batch = count;
    pr.stride_a = inner.sa;
    pr.stride_b = inner.sb;
    pr.stride_out = inner.so;
  }
  pr.loops = std::move(dims);
  if (pr.batch > 1 && pr.stride_b == 0 && !pr.a.col_major && pr.stride_a == pr.m * pr.a.ld) {
    pr.m *= pr.batch;
    pr.batch = 1;
    pr.stride_a = pr.stride_out = 0;
  }
}

// pointer_alignment (log2) of the pointer at every offset the loop uses.
uint8_t loop_alignment(const void* base, const std::vector<BatchDim>& loops, int64_t BatchDim::*s,
                       int64_t elem) {
  uint8_t a = pointer_alignment(base);
  for (const BatchDim& d : loops) {
    a = std::min(a, pointer_alignment(reinterpret_cast<const void*>(d.*s * elem)));
  }
  return a;
}

// The operands' element offsets for launch `index` of the loop.
void loop_offsets(const std::vector<BatchDim>& loops, int64_t index, int64_t& oa, int64_t& ob,
                  int64_t& oo) {
  oa = ob = oo = 0;
  for (int i = static_cast<int>(loops.size()) - 1; i >= 0; --i) {
    const int64_t idx = index % loops[i].size;
    index /= loops[i].size;
    oa += idx * loops[i].sa;
    ob += idx * loops[i].sb;
    oo += idx * loops[i].so;
  }
}

int64_t loop_count(const std::vector<BatchDim>& loops) {
  int64_t n = 1;
  for (const BatchDim& d : loops) n *= d.size;
  return n;
}

const char* at(const void* p, int64_t elements, int64_t elem) {
  return static_cast<const char*>(p) + elements * elem;
}

class MatmulRun {
 public:
  MatmulRun(Tensor& out, const Tensor& a, const Tensor& b, const MatmulParams& p)
      : out_(out), p_(p), device_(out.device().index) {
    a_ = a;
    b_ = b;
    describe_problem();
  }

  void run() {
    if (pr_.k == 0) {  // a zero product: only the epilogue
      epilogue_pass(nullptr);
      return;
    }
    if (try_fused()) return;
    // Unfused: the product in the accumulation type, then our pass.
    const DType acc = out_.dtype() == DType::f64 ? DType::f64 : DType::f32;
    Tensor product = Tensor::empty(Shape{out_.numel()}, acc, out_.device());
    MatmulLaunch launch;
    launch.out = address(product);
    SP_CHECK(launch_all(LtEpilogue::none, false, acc, launch),
             "[matmul] cuBLASLt has no algorithm for ", describe(a_), " @ ", describe(b_),
             " -> ", dtype_name(acc));
    epilogue_pass(address(product));
  }

 private:
  void describe_problem() {
    const int rank = out_.dim();
    pr_.m = out_.shape()[rank - 2];
    pr_.n = out_.shape()[rank - 1];
    pr_.k = a_.shape().back();
    if (pr_.k == 0) return;
    auto matrix = [&](Tensor& t, int64_t rows, int64_t cols, Matrix& m) {
      const int r = t.dim();
      if (!as_matrix(rows, cols, t.strides()[r - 2], t.strides()[r - 1], m)) {
        // Neither inner stride is 1 (or a stride is 0): cuBLASLt needs a dense matrix.
        t = kernels::contiguous(t);
        SP_CHECK(as_matrix(rows, cols, t.strides()[r - 2], t.strides()[r - 1], m),
                 "[matmul] no matrix layout for ", describe(t));
      }
    };
    matrix(a_, pr_.m, pr_.k, pr_.a);
    matrix(b_, pr_.k, pr_.n, pr_.b);
    std::vector<BatchDim> dims;
    const int pa = rank - a_.dim(), pb = rank - b_.dim();
    for (int i = 0; i < rank - 2; ++i) {
      if (out_.shape()[i] == 1) continue;
      auto stride = [&](const Tensor& t, int pad) -> int64_t {
        if (i < pad || t.shape()[i - pad] == 1) return 0;
        return t.strides()[i - pad];
      };
      dims.push_back({out_.shape()[i], stride(a_, pa), stride(b_, pb), out_.strides()[i]});
    }
    plan_batches(std::move(dims), pr_);
  }

  MatmulPlanKey key_for(LtEpilogue epilogue, bool accumulate, DType out_dtype,
                        const MatmulLaunch& launch) const {
    MatmulPlanKey key;
    key.m = pr_.m, key.n = pr_.n, key.k = pr_.k;
    key.lda = pr_.a.ld, key.ldb = pr_.b.ld;
    key.batch = pr_.batch;
    if (pr_.batch > 1) {
      key.stride_a = pr_.stride_a, key.stride_b = pr_.stride_b, key.stride_out = pr_.stride_out;
    }
    key.a_col_major = pr_.a.col_major, key.b_col_major = pr_.b.col_major;
    key.dtype = static_cast<uint8_t>(a_.dtype());
    key.out_dtype = static_cast<uint8_t>(out_dtype);
    key.epilogue = static_cast<uint8_t>(epilogue);
    key.beta_one = accumulate;
    key.tf32 = a_.dtype() == DType::f32 && fp32_matmul() == Fp32Matmul::tf32;
    key.device = static_cast<uint8_t>(device_);
    const int64_t ein = a_.element_size(), eout = dtype_size(out_dtype);
    key.align_a = loop_alignment(address(a_), pr_.loops, &BatchDim::sa, ein);
    key.align_b = loop_alignment(address(b_), pr_.loops, &BatchDim::sb, ein);
    key.align_out = loop_alignment(launch.out, pr_.loops, &BatchDim::so, eout);
    key.align_bias = launch.bias != nullptr ? pointer_alignment(launch.bias) : 0;  // log2
    key.align_aux = launch.aux != nullptr ? loop_alignment(launch.aux, pr_.loops, &BatchDim::so, eout)
                                          : 0;
    return key;
  }

  // Runs every launch of the loop; false (before any launch) when cuBLASLt has no
  // algorithm. launch.out and launch.aux are the bases for offset 0.
  bool launch_all(LtEpilogue epilogue, bool accumulate, DType out_dtype, MatmulLaunch launch) {
    const MatmulPlanKey key = key_for(epilogue, accumulate, out_dtype, launch);
    const double alpha64 = p_.alpha, beta64 = accumulate ? 1.0 : 0.0;
    const float alpha32 = p_.alpha, beta32 = accumulate ? 1.0f : 0.0f;
    const bool f64 = a_.dtype() == DType::f64;
    launch.alpha = f64 ? static_cast<const void*>(&alpha64) : &alpha32;
    launch.beta = f64 ? static_cast<const void*>(&beta64) : &beta32;
    const int64_t ein = a_.element_size(), eout = dtype_size(out_dtype);
    void* out_base = launch.out;
    void* aux_base = launch.aux;
    const int64_t count = loop_count(pr_.loops);
    for (int64_t i = 0; i < count; ++i) {
      int64_t oa, ob, oo;
      loop_offsets(pr_.loops, i, oa, ob, oo);
      launch.a = at(address(a_), oa, ein);
      launch.b = at(address(b_), ob, ein);
      launch.out = const_cast<char*>(at(out_base, oo, eout));
      if (aux_base != nullptr) launch.aux = const_cast<char*>(at(aux_base, oo, eout));
      if (!run_matmul_plan(key, launch)) {
        SP_CHECK(i == 0, "[matmul] cuBLASLt plan lost its algorithm mid-loop");
        return false;
      }
    }
    return true;
  }

  // The whole op in cuBLASLt, where it fuses this combination; false when it does not.
  bool try_fused() {
    const DType dt = out_.dtype();
    const bool bias = p_.bias != nullptr;
    if (bias && (p_.bias->dtype() != dt || pointer_alignment(address(*p_.bias)) < 4)) return false;
    MatmulLaunch launch;
    launch.out = address(out_);
    launch.bias = bias ? address(*p_.bias) : nullptr;
    if (p_.epilogue == Epilogue::none) {
      return launch_all(bias ? LtEpilogue::bias : LtEpilogue::none, p_.accumulate, dt, launch);
    }
    // GELU aux: one un-batched product, not accumulating (cuBLASLt would apply the
    // activation after beta * C, as we do, but we keep to what its documentation states),
    // aux leading dim divisible by 8 and aux 16-byte aligned (log2 4).
    const bool single = pr_.batch == 1 && pr_.loops.empty();
    if (dt == DType::f64 || p_.accumulate || !single || pr_.n % 8 != 0 ||
        pointer_alignment(address(*p_.aux)) < 4) {
      return false;
    }
    launch.aux = address(*p_.aux);
    if (p_.epilogue == Epilogue::gelu_tanh) {
      return launch_all(bias ? LtEpilogue::gelu_aux_bias : LtEpilogue::gelu_aux, false, dt, launch);
    }
    if (bias) return false;  // DGELU takes no bias
    return launch_all(LtEpilogue::dgelu, false, dt, launch);
  }

  void epilogue_pass(const void* product) {
    count_unfused_matmul();
    MatmulEpilogueArgs args;
    args.product = product;
    args.out = address(out_);
    args.bias = p_.bias != nullptr ? address(*p_.bias) : nullptr;
    args.bias_dtype = p_.bias != nullptr ? p_.bias->dtype() : out_.dtype();
    args.aux = p_.aux != nullptr ? address(*p_.aux) : nullptr;
    args.rows = out_.numel() / pr_.n;
    args.n = pr_.n;
    args.out_dtype = out_.dtype();
    args.epilogue = p_.epilogue;
    args.accumulate = p_.accumulate;
    launch_matmul_epilogue(args);
  }

  Tensor& out_;
  const MatmulParams& p_;
  int device_;
  Tensor a_, b_;  // the operands, or their dense copies
  Problem pr_;
};

}  // namespace

// out: [..., M, N] contiguous; a: [..., M, K], b: [..., K, N] (transposed views and
// broadcast batch dims allowed); bias: [N]; aux: out's shape.
void CudaBackend::matmul(Tensor& out, const Tensor& a, const Tensor& b, const MatmulParams& p) {
  if (out.numel() == 0) return;
  const DType dt = out.dtype();
  SP_CHECK(dt == DType::f32 || dt == DType::bf16 || dt == DType::f16 || dt == DType::f64,
           "[matmul] unsupported dtype ", dtype_name(dt), ": expected f32, bf16, f16 or f64");
  SP_CHECK(p.epilogue == Epilogue::none || (p.aux != nullptr && p.aux->defined()),
           "[matmul] the epilogue needs aux");
  DeviceGuard guard(out.device().index);
  MatmulRun(out, a, b, p).run();
}

}  // namespace sp::cuda
