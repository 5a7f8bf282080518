// PLACEHOLDER: replaced by the family's kernels.
#include "tensor/cuda/cuda_backend.h"

namespace sp::cuda {

void CudaBackend::cross_entropy(Tensor&, Tensor&, const Tensor&, const Tensor&, int64_t, double) { unsupported("cross_entropy"); }
void CudaBackend::cross_entropy_backward(Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t, double) { unsupported("cross_entropy_backward"); }

}  // namespace sp::cuda
