// The cuBLASLt plan cache, handles and workspaces (matmul_plan.h).
#include "tensor/cuda/matmul_plan.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda_hooks.h"
#include "tensor/error.h"

namespace sp::cuda {
namespace {

// Enough for every heuristic choice on Hopper (NVIDIA's recommendation for sm_90).
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

[[noreturn]] void fail_lt(const char* expr, cublasStatus_t status) {
  fail(str_cat("[matmul] cuBLASLt error ", cublasLtGetStatusName(status), ": ",
               cublasLtGetStatusString(status), " (in ", expr, ")"));
}

#define SP_LT_CHECK(expr)                                    \
  do {                                                       \
    const cublasStatus_t sp_lt_status_ = (expr);             \
    if (sp_lt_status_ != CUBLAS_STATUS_SUCCESS) [[unlikely]] \
      fail_lt(#expr, sp_lt_status_);                         \
  } while (0)

// The product a key describes, for error messages.
std::string describe(const MatmulPlanKey& k) {
  return str_cat("m=", k.m, " n=", k.n, " k=", k.k, " lda=", k.lda, " ldb=", k.ldb,
                 " batch=", k.batch, k.a_col_major ? " a^T" : "", k.b_col_major ? " b^T" : "", " ",
                 dtype_name(static_cast<DType>(k.dtype)), "->",
                 dtype_name(static_cast<DType>(k.out_dtype)), " epilogue ",
                 static_cast<int>(k.epilogue), k.beta_one ? " beta=1" : "",
                 " on cuda:", static_cast<int>(k.device));
}

// With an epilogue, the statuses by which cuBLASLt says it does not fuse this combination
// (a bias or aux type, f64): the caller's unfused path is then correct. Anything else
// (an allocation or internal failure) is an error, not a reason to stop fusing for good.
bool does_not_fuse(cublasStatus_t st) {
  return st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE;
}

struct KeyHash {
  size_t operator()(const MatmulPlanKey& k) const {
    uint64_t words[sizeof(MatmulPlanKey) / 8];
    std::memcpy(words, &k, sizeof(words));
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (uint64_t w : words) h = (h ^ w) * 0xff51afd7ed558ccdull;
    return static_cast<size_t>(h ^ (h >> 32));
  }
};

// A built plan. Descriptors of a cached plan are never destroyed: the cache lives as long
// as the process and destroying them after the CUDA runtime has shut down would fail.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr;  // cuBLASLt's A: our b
  cublasLtMatrixLayout_t b = nullptr;  // cuBLASLt's B: our a
  cublasLtMatrixLayout_t c = nullptr;  // C and D: out^T, column-major [n, m]
  cublasLtMatmulAlgo_t algo{};
  bool has_algo = false;
};

// Per device: the handle and the workspace of its one stream, created on first use.
struct DeviceContext {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
};

struct Cache {
  std::mutex mu;
  std::unordered_map<MatmulPlanKey, Plan, KeyHash> plans;
  std::vector<DeviceContext> devices;
  int64_t hits = 0;
  int64_t misses = 0;
  std::atomic<int64_t> unfused{0};
};

Cache& cache() {
  static Cache* c = new Cache;  // leaked on purpose: see Plan
  return *c;
}

// Requires c.mu held.
DeviceContext& device_context(Cache& c, int device) {
  if (c.devices.empty()) c.devices.resize(static_cast<size_t>(std::max(cuda_device_count(), 0)));
  SP_CHECK(device >= 0 && device < static_cast<int>(c.devices.size()), "[matmul] cuda:", device,
           " does not exist: ", c.devices.size(), " CUDA device(s) visible");
  DeviceContext& ctx = c.devices[device];
  if (ctx.handle == nullptr) {
    // Both fields are published only once both exist: a failure leaves the context empty,
    // so the next matmul tries again instead of running without its workspace.
    DeviceGuard guard(device);
    void* workspace = nullptr;
    cudaError_t err = cudaMalloc(&workspace, kWorkspaceBytes);
    if (err == cudaErrorMemoryAllocation) {
      // The workspace is outside the caching allocator: give its cached segments back first.
      cudaGetLastError();
      cuda_allocator(device).empty_cache();
      err = cudaMalloc(&workspace, kWorkspaceBytes);
    }
    if (err != cudaSuccess) cudaGetLastError();
    SP_CUDA_CHECK("matmul", err);
    cublasLtHandle_t handle = nullptr;
    const cublasStatus_t status = cublasLtCreate(&handle);
    if (status != CUBLAS_STATUS_SUCCESS) cudaFree(workspace);
    SP_LT_CHECK(status);
    ctx.workspace = workspace;
    ctx.handle = handle;
  }
  return ctx;
}

cudaDataType_t cuda_type(uint8_t dtype) {
  switch (static_cast<DType>(dtype)) {
    case DType::f32: return CUDA_R_32F;
    case DType::bf16: return CUDA_R_16BF;
    case DType::f16: return CUDA_R_16F;
    case DType::f64: return CUDA_R_64F;
    default:
      fail(str_cat("[matmul] unsupported dtype ", dtype_name(static_cast<DType>(dtype)),
                   ": expected f32, bf16, f16 or f64"));
  }
}

cublasLtEpilogue_t lt_epilogue(uint8_t e) {
  switch (static_cast<LtEpilogue>(e)) {
    case LtEpilogue::none: return CUBLASLT_EPILOGUE_DEFAULT;
    case LtEpilogue::bias: return CUBLASLT_EPILOGUE_BIAS;
    case LtEpilogue::gelu_aux: return CUBLASLT_EPILOGUE_GELU_AUX;
    case LtEpilogue::gelu_aux_bias: return CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
    case LtEpilogue::dgelu: return CUBLASLT_EPILOGUE_DGELU;
  }
  fail(str_cat("[matmul] unknown epilogue ", static_cast<int>(e)));
}

bool has_bias(uint8_t e) {
  const auto x = static_cast<LtEpilogue>(e);
  return x == LtEpilogue::bias || x == LtEpilogue::gelu_aux_bias;
}

bool has_aux(uint8_t e) {
  const auto x = static_cast<LtEpilogue>(e);
  return x == LtEpilogue::gelu_aux || x == LtEpilogue::gelu_aux_bias || x == LtEpilogue::dgelu;
}

template <typename T>
void set_desc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const T& value) {
  SP_LT_CHECK(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value)));
}

// Destroys a plan's descriptors while armed: build_plan disarms it once the plan is
// complete, so a failure part way leaks none of them.
struct PlanCleanup {
  Plan& plan;
  bool armed = true;
  ~PlanCleanup() {
    if (!armed) return;
    for (cublasLtMatrixLayout_t layout : {plan.a, plan.b, plan.c})
      if (layout != nullptr) cublasLtMatrixLayoutDestroy(layout);
    if (plan.desc != nullptr) cublasLtMatmulDescDestroy(plan.desc);
  }
};

// Stores the new layout in *out as soon as it exists (for PlanCleanup), then sets its batch.
void make_layout(cublasLtMatrixLayout_t* out, cudaDataType_t type, int64_t rows, int64_t cols,
                 int64_t ld, int64_t batch, int64_t stride) {
  SP_LT_CHECK(cublasLtMatrixLayoutCreate(out, type, static_cast<uint64_t>(rows),
                                         static_cast<uint64_t>(cols), ld));
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    SP_LT_CHECK(cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                 sizeof(count)));
    SP_LT_CHECK(cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                 &stride, sizeof(stride)));
  }
}

// The preference descriptor of one heuristic query, destroyed however the query ends.
struct Preference {
  cublasLtMatmulPreference_t pref = nullptr;
  Preference() { SP_LT_CHECK(cublasLtMatmulPreferenceCreate(&pref)); }
  ~Preference() {
    if (pref != nullptr) cublasLtMatmulPreferenceDestroy(pref);
  }
  Preference(const Preference&) = delete;
  Preference& operator=(const Preference&) = delete;
  template <typename T>
  void set(cublasLtMatmulPreferenceAttributes_t attr, const T& value) {
    SP_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value)));
  }
};

// The per-launch pointers the descriptor carries (the heuristic reads their alignment).
void set_pointers(const Plan& plan, const MatmulPlanKey& key, const MatmulLaunch& launch) {
  if (has_bias(key.epilogue)) set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, launch.bias);
  if (has_aux(key.epilogue))
    set_desc(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, launch.aux);
}

Plan build_plan(const MatmulPlanKey& key, const MatmulLaunch& launch, DeviceContext& ctx) {
  Plan plan;
  PlanCleanup cleanup{plan};
  const DType dt = static_cast<DType>(key.dtype);
  const bool f64 = dt == DType::f64;
  SP_CHECK(f64 == (static_cast<DType>(key.out_dtype) == DType::f64),
           "[matmul] f64 products need an f64 output");
  const cublasComputeType_t compute = f64        ? CUBLAS_COMPUTE_64F
                                      : key.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                 : CUBLAS_COMPUTE_32F;
  SP_LT_CHECK(cublasLtMatmulDescCreate(&plan.desc, compute, f64 ? CUDA_R_64F : CUDA_R_32F));
  // cuBLASLt's A = our b: [n, k] column-major is b row-major; b column-major is [k, n]
  // column-major transposed. Likewise its B = our a as [k, m].
  const cublasOperation_t op_a = key.b_col_major ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = key.a_col_major ? CUBLAS_OP_T : CUBLAS_OP_N;
  set_desc(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, op_a);
  set_desc(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, op_b);
  set_desc(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, lt_epilogue(key.epilogue));
  if (has_bias(key.epilogue)) {
    const int32_t bias_type = cuda_type(key.out_dtype);
    set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type);
  }
  if (has_aux(key.epilogue)) set_desc(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, key.n);
  set_pointers(plan, key, launch);

  const cudaDataType_t in_type = cuda_type(key.dtype), out_type = cuda_type(key.out_dtype);
  if (key.b_col_major) {
    make_layout(&plan.a, in_type, key.k, key.n, key.ldb, key.batch, key.stride_b);
  } else {
    make_layout(&plan.a, in_type, key.n, key.k, key.ldb, key.batch, key.stride_b);
  }
  if (key.a_col_major) {
    make_layout(&plan.b, in_type, key.m, key.k, key.lda, key.batch, key.stride_a);
  } else {
    make_layout(&plan.b, in_type, key.k, key.m, key.lda, key.batch, key.stride_a);
  }
  make_layout(&plan.c, out_type, key.n, key.m, key.n, key.batch, key.stride_out);

  Preference pref;
  const uint64_t workspace = kWorkspaceBytes;
  const uint32_t align_a = 1u << key.align_b, align_b = 1u << key.align_a;
  const uint32_t align_c = 1u << key.align_out;
  pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, workspace);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
      ctx.handle, plan.desc, plan.a, plan.b, plan.c, plan.c, pref.pref, 1, &result, &found);
  // NOT_SUPPORTED (or no result) means no kernel takes this combination: the caller falls
  // back. A plain product has no fallback of its own, so any other failure there is a bug
  // in the descriptors and is reported; with an epilogue, INVALID_VALUE also means "does
  // not fuse" (does_not_fuse).
  const bool fused = static_cast<LtEpilogue>(key.epilogue) != LtEpilogue::none;
  if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED &&
      !(fused && does_not_fuse(st)))
    fail_lt(str_cat("the algorithm heuristic for ", describe(key)).c_str(), st);
  if (st == CUBLAS_STATUS_SUCCESS && found > 0 && result.state == CUBLAS_STATUS_SUCCESS) {
    plan.algo = result.algo;
    plan.has_algo = true;
  }
  cleanup.armed = false;
  return plan;
}

}  // namespace

uint8_t pointer_alignment(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  uint8_t log2 = 8;
  while (log2 > 0 && v % (uintptr_t{1} << log2) != 0) --log2;
  return log2;
}

bool run_matmul_plan(const MatmulPlanKey& key, const MatmulLaunch& launch) {
  Cache& c = cache();
  // Held through the launch: the descriptor's bias and aux pointers are per launch.
  std::lock_guard<std::mutex> lock(c.mu);
  DeviceContext& ctx = device_context(c, key.device);
  auto it = c.plans.find(key);
  if (it == c.plans.end()) {
    ++c.misses;
    it = c.plans.emplace(key, build_plan(key, launch, ctx)).first;
  } else {
    ++c.hits;
  }
  Plan& plan = it->second;
  if (!plan.has_algo) return false;
  set_pointers(plan, key, launch);
  const cublasStatus_t st =
      cublasLtMatmul(ctx.handle, plan.desc, launch.alpha, launch.b, plan.a, launch.a, plan.b,
                     launch.beta, launch.out, plan.c, launch.out, plan.c, &plan.algo, ctx.workspace,
                     kWorkspaceBytes, stream(key.device));
  if (static_cast<LtEpilogue>(key.epilogue) != LtEpilogue::none && does_not_fuse(st)) {
    // Refused before launching (an argument check): this key takes the unfused path from now on.
    plan.has_algo = false;
    return false;
  }
  if (st != CUBLAS_STATUS_SUCCESS)
    fail_lt(str_cat("cublasLtMatmul for ", describe(key)).c_str(), st);
  return true;
}

MatmulPlanStats matmul_plan_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return {static_cast<int64_t>(c.plans.size()), c.hits, c.misses, c.unfused.load()};
}

void count_unfused_matmul() { cache().unfused.fetch_add(1, std::memory_order_relaxed); }

}  // namespace sp::cuda
