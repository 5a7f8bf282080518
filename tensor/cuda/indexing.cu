// PLACEHOLDER: replaced by the family's kernels.
#include "tensor/cuda/cuda_backend.h"

namespace sp::cuda {

void CudaBackend::index_select(Tensor&, const Tensor&, int, const Tensor&) { unsupported("index_select"); }
void CudaBackend::index_add(Tensor&, int, const Tensor&, const Tensor&) { unsupported("index_add"); }
void CudaBackend::gather(Tensor&, const Tensor&, int, const Tensor&) { unsupported("gather"); }
void CudaBackend::scatter_add(Tensor&, int, const Tensor&, const Tensor&) { unsupported("scatter_add"); }

}  // namespace sp::cuda
