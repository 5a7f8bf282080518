// The CUDA backend's instance (cuda_backend()) and what it supports.
#include "tensor/cuda/cuda_backend.h"

#include "tensor/cuda_emulation.h"

namespace sp {
namespace cuda {

// Every primitive and dtype the CPU backend computes; the gpu suite checks each against it.
bool CudaBackend::supports(Prim prim, DType dtype) const {
  return cpu_backend().supports(prim, dtype);
}

void CudaBackend::unsupported(const char* op) const {
  fail(str_cat("[", op, "] not implemented on CUDA"));
}

}  // namespace cuda

Backend& cuda_backend() {
  if (cuda_emulated()) return emulated_cuda_backend();
  static cuda::CudaBackend backend;
  return backend;
}

}  // namespace sp
