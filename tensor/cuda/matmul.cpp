// PLACEHOLDER: replaced by the family's kernels.
#include "tensor/cuda/cuda_backend.h"

namespace sp::cuda {

void CudaBackend::matmul(Tensor&, const Tensor&, const Tensor&, const MatmulParams&) { unsupported("matmul"); }

}  // namespace sp::cuda
