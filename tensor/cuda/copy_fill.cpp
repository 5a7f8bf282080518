#include "tensor/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <cstring>
#include <type_traits>

#include "tensor/cuda/cuda_kernels.h"
#include "tensor/cuda/cuda_util.h"

namespace sp {
namespace cuda {
namespace {

// The bit pattern of value stored as dtype, in the low bytes.
uint64_t element_pattern(DType dtype, double value) {
  uint64_t pattern = 0;
  SP_DISPATCH_ALL(dtype, "fill", [&]<typename T>() {
    T v;
    if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
      v = T(static_cast<float>(value));
    } else if constexpr (std::is_same_v<T, bool>) {
      v = value != 0;
    } else {
      v = static_cast<T>(value);
    }
    static_assert(sizeof(T) <= sizeof(pattern));
    std::memcpy(&pattern, &v, sizeof(T));
  });
  return pattern;
}

}  // namespace

// out: [*] contiguous on a CUDA device -> every element = value (converted to out's dtype).
void CudaBackend::fill(Tensor& out, double value) {
  SP_CHECK(out.is_contiguous(), "[fill] strided tensors are not yet supported on CUDA: out is ",
           describe(out), " with strides ", out.strides());
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device().index);
  SP_CUDA_CHECK("fill", launch_fill(address(out), out.numel(), static_cast<int>(out.element_size()),
                                    element_pattern(out.dtype(), value)));
}

// in: [*] -> out: [*] (same shape), where at least one side is on a CUDA device.
// Host -> device converts dtype and gathers strides on the CPU first; device -> host and
// device -> device need a contiguous source, and device -> device the same dtype, until
// the strided and casting kernels exist.
void CudaBackend::copy(Tensor& out, const Tensor& in) {
  SP_CHECK(out.shape() == in.shape(), "[copy] shapes differ: out is ", describe(out), ", in is ",
           describe(in));
  SP_CHECK(out.is_contiguous(),
           "[copy] a strided destination is not yet supported on CUDA: out is ", describe(out),
           " on ", out.device(), " with strides ", out.strides());
  if (out.numel() == 0) return;

  if (in.device().is_cpu()) {
    Tensor src = in;
    if (!in.is_contiguous() || in.dtype() != out.dtype()) {
      src = Tensor::empty(in.shape(), out.dtype(), Device::cpu());
      cpu_backend().copy(src, in);
    }
    DeviceGuard guard(out.device().index);
    SP_CUDA_CHECK("copy", cudaMemcpy(address(out), address(src), static_cast<size_t>(out.nbytes()),
                                     cudaMemcpyHostToDevice));
    return;
  }

  SP_CHECK(in.is_contiguous(), "[copy] a strided source is not yet supported on CUDA: in is ",
           describe(in), " on ", in.device(), " with strides ", in.strides());
  if (out.device().is_cpu()) {
    DeviceGuard guard(in.device().index);
    if (in.dtype() == out.dtype()) {
      SP_CUDA_CHECK("copy", cudaMemcpy(address(out), address(in), static_cast<size_t>(out.nbytes()),
                                       cudaMemcpyDeviceToHost));
    } else {
      Tensor staged = Tensor::empty(in.shape(), in.dtype(), Device::cpu());
      SP_CUDA_CHECK("copy", cudaMemcpy(address(staged), address(in),
                                       static_cast<size_t>(in.nbytes()), cudaMemcpyDeviceToHost));
      cpu_backend().copy(out, staged);
    }
    return;
  }

  SP_CHECK(in.dtype() == out.dtype(),
           "[copy] a dtype conversion between CUDA tensors is not yet supported on CUDA: in is ",
           describe(in), ", out is ", describe(out));
  const size_t nbytes = static_cast<size_t>(out.nbytes());
  if (in.device() == out.device()) {
    DeviceGuard guard(out.device().index);
    SP_CUDA_CHECK("copy", cudaMemcpy(address(out), address(in), nbytes, cudaMemcpyDeviceToDevice));
  } else {
    SP_CUDA_CHECK("copy", cudaMemcpyPeer(address(out), out.device().index, address(in),
                                         in.device().index, nbytes));
  }
}

}  // namespace cuda
}  // namespace sp
