#pragma once
// The CUDA backend: cuBLASLt for matmul, our own kernels for everything else. Each family
// of primitives is defined in its own file in this folder, as in tensor/cpu/. Every kernel
// runs on the device's one stream (cuda_util.h: stream()).
#include "tensor/backend.h"

namespace sp::cuda {

class CudaBackend final : public Backend {
 public:
  std::string name() const override { return "cuda"; }
  bool supports(Prim prim, DType dtype) const override;

  // copy_fill.cpp (+ copy_kernels.cu): fills, casts, strided and cross-device copies
  void fill(Tensor& out, double value) override;
  void copy(Tensor& out, const Tensor& in) override;
  // elementwise.cu
  void unary(UnaryOp op, Tensor& out, const Tensor& in, UnaryParams p) override;
  void activation_backward(ActivationGrad op, Tensor& dx, const Tensor& dy,
                           const Tensor& x) override;
  void binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) override;
  void where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) override;
  // reduce.cu
  void reduce(ReduceOp op, Tensor& out, const Tensor& in, uint32_t dims_mask) override;
  // matmul.cpp (cuBLASLt)
  void matmul(Tensor& out, const Tensor& a, const Tensor& b, const MatmulParams& p) override;
  // softmax.cu
  void softmax(Tensor& out, const Tensor& in, bool log) override;
  void add_softmax(Tensor& out, const Tensor& in, const Tensor& bias) override;
  void softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, bool log) override;
  // rms_norm.cu
  void rms_norm(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& weight,
                double eps) override;
  void rms_norm_backward(Tensor& dx, Tensor& dweight, const Tensor& dy, const Tensor& x,
                         const Tensor& weight, const Tensor& rstd) override;
  // embedding.cu
  void embedding(Tensor& out, const Tensor& weight, const Tensor& ids) override;
  void embedding_backward(Tensor& dweight, const Tensor& dy, const Tensor& ids) override;
  // cross_entropy.cu
  void cross_entropy(Tensor& loss, Tensor& lse, const Tensor& logits, const Tensor& targets,
                     int64_t ignore_index, double z_loss) override;
  void cross_entropy_backward(Tensor& dlogits, const Tensor& dloss, const Tensor& logits,
                              const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                              double z_loss) override;
  // random.cu
  void dropout(Tensor& out, const Tensor& in, double p, PhiloxState state) override;
  void random(Tensor& out, DistributionParams d, PhiloxState state) override;
  // indexing.cu
  void index_select(Tensor& out, const Tensor& in, int dim, const Tensor& index) override;
  void index_add(Tensor& out, int dim, const Tensor& index, const Tensor& src) override;
  void gather(Tensor& out, const Tensor& in, int dim, const Tensor& index) override;
  void scatter_add(Tensor& out, int dim, const Tensor& index, const Tensor& src) override;

 protected:
  [[noreturn]] void unsupported(const char* op) const override;
};

// The address of t's first element (host or device memory).
inline void* address(const Tensor& t) {
  return static_cast<char*>(t.storage()->data()) + t.offset() * t.element_size();
}

}  // namespace sp::cuda
