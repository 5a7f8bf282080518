// PLACEHOLDER: replaced by the family's kernels.
#include "tensor/cuda/cuda_backend.h"

namespace sp::cuda {

void CudaBackend::softmax(Tensor&, const Tensor&, bool) { unsupported("softmax"); }
void CudaBackend::softmax_backward(Tensor&, const Tensor&, const Tensor&, bool) { unsupported("softmax_backward"); }

}  // namespace sp::cuda
