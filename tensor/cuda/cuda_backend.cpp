// The CUDA backend's registry entry and what it supports.
#include "tensor/cuda/cuda_backend.h"

namespace sp {
namespace cuda {

bool CudaBackend::supports(Prim prim, DType) const {
  return prim == Prim::fill || prim == Prim::copy;
}

void CudaBackend::unsupported(const char* op) const {
  fail(str_cat("[", op, "] not yet implemented on CUDA"));
}

}  // namespace cuda

Backend& cuda_backend() {
  static cuda::CudaBackend backend;
  return backend;
}

}  // namespace sp
