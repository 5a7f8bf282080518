// PLACEHOLDER: replaced by the family's kernels.
#include "tensor/cuda/cuda_backend.h"

namespace sp::cuda {

void CudaBackend::reduce(ReduceOp, Tensor&, const Tensor&, uint32_t) { unsupported("reduce"); }

}  // namespace sp::cuda
