// PLACEHOLDER: replaced by the family's kernels.
#include "tensor/cuda/cuda_backend.h"

namespace sp::cuda {

void CudaBackend::dropout(Tensor&, const Tensor&, double, PhiloxState) { unsupported("dropout"); }
void CudaBackend::random(Tensor&, DistributionParams, PhiloxState) { unsupported("random"); }

}  // namespace sp::cuda
