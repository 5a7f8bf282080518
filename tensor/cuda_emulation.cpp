// Host-emulated CUDA (tensor/cuda_emulation.h).
#include "tensor/cuda_emulation.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <utility>

#include "tensor/backend.h"
#include "tensor/caching_allocator.h"
#include "tensor/error.h"

namespace sp {
namespace {

// Segments from aligned_alloc. A request larger than the host's physical memory (the
// emulated device's size) or one aligned_alloc refuses is reported like a failed
// cudaMalloc, so the allocator's retry and error path run as well.
class HostSegmentSource final : public SegmentSource {
 public:
  void* allocate_segment(size_t nbytes) override {
    constexpr size_t kAlign = 4096;
    static const size_t capacity =
        static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
    if (nbytes > capacity) {
      last_error_ = str_cat("the emulated device has ", capacity, " bytes (the host's memory)");
      return nullptr;
    }
    void* p = std::aligned_alloc(kAlign, (nbytes + kAlign - 1) / kAlign * kAlign);
    if (!p) last_error_ = str_cat("aligned_alloc of ", nbytes, " host bytes failed");
    return p;
  }
  void free_segment(void* p, size_t) override { std::free(p); }
  std::string last_error() const override { return last_error_; }

 private:
  std::string last_error_;
};

// While a primitive runs, Tensor::data<T>() may read cuda:0 tensors (their memory is host
// memory); outside one, reading a device tensor from the host still throws, as on a GPU.
// A count, not a thread-local flag: the CPU kernels read through OpenMP worker threads.
std::atomic<int> kernels_running{0};

struct KernelScope {
  KernelScope() { kernels_running.fetch_add(1, std::memory_order_relaxed); }
  ~KernelScope() { kernels_running.fetch_sub(1, std::memory_order_relaxed); }
  KernelScope(const KernelScope&) = delete;
  KernelScope& operator=(const KernelScope&) = delete;
};

// Every primitive forwarded to the CPU backend inside a KernelScope.
class HostEmulatedCudaBackend final : public Backend {
 public:
  std::string name() const override { return "cuda (host-emulated)"; }
  bool supports(Prim prim, DType dtype) const override {
    return cpu_backend().supports(prim, dtype);
  }

  void fill(Tensor& out, double value) override { on_cpu(&Backend::fill, out, value); }
  void copy(Tensor& out, const Tensor& in) override { on_cpu(&Backend::copy, out, in); }
  void unary(UnaryOp op, Tensor& out, const Tensor& in, UnaryParams p) override {
    on_cpu(&Backend::unary, op, out, in, p);
  }
  void activation_backward(ActivationGrad op, Tensor& dx, const Tensor& dy,
                           const Tensor& x) override {
    on_cpu(&Backend::activation_backward, op, dx, dy, x);
  }
  void binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) override {
    on_cpu(&Backend::binary, op, out, a, b);
  }
  void where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) override {
    on_cpu(&Backend::where, out, cond, a, b);
  }
  void reduce(ReduceOp op, Tensor& out, const Tensor& in, uint32_t dims_mask) override {
    on_cpu(&Backend::reduce, op, out, in, dims_mask);
  }
  void matmul(Tensor& out, const Tensor& a, const Tensor& b, const MatmulParams& p) override {
    on_cpu(&Backend::matmul, out, a, b, p);
  }
  void softmax(Tensor& out, const Tensor& in, bool log) override {
    on_cpu(&Backend::softmax, out, in, log);
  }
  void softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, bool log) override {
    on_cpu(&Backend::softmax_backward, dx, dy, y, log);
  }
  void rms_norm(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& weight,
                double eps) override {
    on_cpu(&Backend::rms_norm, out, rstd, x, weight, eps);
  }
  void rms_norm_backward(Tensor& dx, Tensor& dweight, const Tensor& dy, const Tensor& x,
                         const Tensor& weight, const Tensor& rstd) override {
    on_cpu(&Backend::rms_norm_backward, dx, dweight, dy, x, weight, rstd);
  }
  void embedding(Tensor& out, const Tensor& weight, const Tensor& ids) override {
    on_cpu(&Backend::embedding, out, weight, ids);
  }
  void embedding_backward(Tensor& dweight, const Tensor& dy, const Tensor& ids) override {
    on_cpu(&Backend::embedding_backward, dweight, dy, ids);
  }
  void cross_entropy(Tensor& loss, Tensor& lse, const Tensor& logits, const Tensor& targets,
                     int64_t ignore_index, double z_loss) override {
    on_cpu(&Backend::cross_entropy, loss, lse, logits, targets, ignore_index, z_loss);
  }
  void cross_entropy_backward(Tensor& dlogits, const Tensor& dloss, const Tensor& logits,
                              const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                              double z_loss) override {
    on_cpu(&Backend::cross_entropy_backward, dlogits, dloss, logits, targets, lse, ignore_index,
           z_loss);
  }
  void dropout(Tensor& out, const Tensor& in, double p, PhiloxState state) override {
    on_cpu(&Backend::dropout, out, in, p, state);
  }
  void random(Tensor& out, DistributionParams d, PhiloxState state) override {
    on_cpu(&Backend::random, out, d, state);
  }
  void index_select(Tensor& out, const Tensor& in, int dim, const Tensor& index) override {
    on_cpu(&Backend::index_select, out, in, dim, index);
  }
  void index_add(Tensor& out, int dim, const Tensor& index, const Tensor& src) override {
    on_cpu(&Backend::index_add, out, dim, index, src);
  }
  void gather(Tensor& out, const Tensor& in, int dim, const Tensor& index) override {
    on_cpu(&Backend::gather, out, in, dim, index);
  }
  void scatter_add(Tensor& out, int dim, const Tensor& index, const Tensor& src) override {
    on_cpu(&Backend::scatter_add, out, dim, index, src);
  }

 private:
  // cpu_backend().*prim(args...) inside a KernelScope (a virtual call: the CPU's kernel).
  template <typename... Params, typename... Args>
  static void on_cpu(void (Backend::*prim)(Params...), Args&&... args) {
    KernelScope k;
    (cpu_backend().*prim)(std::forward<Args>(args)...);
  }
};

}  // namespace

bool cuda_emulated() {
  static const bool on = [] {
    const char* v = std::getenv("SP_EMULATE_CUDA");
    return v != nullptr && std::string(v) == "1";
  }();
  return on;
}

bool emulated_kernel_running() { return kernels_running.load(std::memory_order_relaxed) > 0; }

Backend& emulated_cuda_backend() {
  static HostEmulatedCudaBackend backend;
  return backend;
}

Allocator& emulated_cuda_allocator(int device_index) {
  SP_CHECK(device_index == 0, "[allocate] cuda:", device_index,
           " does not exist: 1 CUDA device visible (emulated, SP_EMULATE_CUDA=1)");
  // Never destroyed, as on a GPU: tensors in static storage may outlive it.
  static CachingAllocator* allocator = new CachingAllocator("cuda:0", *new HostSegmentSource());
  return *allocator;
}

}  // namespace sp
