// PLACEHOLDER: replaced by the family's kernels.
#include "tensor/cuda/cuda_backend.h"

namespace sp::cuda {

void CudaBackend::unary(UnaryOp, Tensor&, const Tensor&, UnaryParams) { unsupported("unary"); }
void CudaBackend::activation_backward(ActivationGrad, Tensor&, const Tensor&, const Tensor&) { unsupported("activation_backward"); }
void CudaBackend::binary(BinaryOp, Tensor&, const Tensor&, const Tensor&) { unsupported("binary"); }
void CudaBackend::where(Tensor&, const Tensor&, const Tensor&, const Tensor&) { unsupported("where"); }

}  // namespace sp::cuda
