// PLACEHOLDER: replaced by the family's kernels.
#include "tensor/cuda/cuda_backend.h"

namespace sp::cuda {

void CudaBackend::rms_norm(Tensor&, Tensor&, const Tensor&, const Tensor&, double) { unsupported("rms_norm"); }
void CudaBackend::rms_norm_backward(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) { unsupported("rms_norm_backward"); }

}  // namespace sp::cuda
