#pragma once
// The CUDA backend. For now: fill and copy (host <-> device, device <-> device); every
// other primitive throws "[<op>] not yet implemented on CUDA". Each family of primitives
// gets its own file in this folder as it lands (cuBLASLt matmul, elementwise kernels, ...).
#include "tensor/backend.h"

namespace sp::cuda {

class CudaBackend final : public Backend {
 public:
  std::string name() const override { return "cuda"; }
  bool supports(Prim prim, DType dtype) const override;

  // cuda_backend.cpp
  void fill(Tensor& out, double value) override;
  void copy(Tensor& out, const Tensor& in) override;

 protected:
  [[noreturn]] void unsupported(const char* op) const override;
};

// The address of t's first element (host or device memory).
inline void* address(const Tensor& t) {
  return static_cast<char*>(t.storage()->data()) + t.offset() * t.element_size();
}

}  // namespace sp::cuda
