// PLACEHOLDER: replaced by the family's kernels.
#include "tensor/cuda/cuda_backend.h"

namespace sp::cuda {

void CudaBackend::embedding(Tensor&, const Tensor&, const Tensor&) { unsupported("embedding"); }
void CudaBackend::embedding_backward(Tensor&, const Tensor&, const Tensor&) { unsupported("embedding_backward"); }

}  // namespace sp::cuda
