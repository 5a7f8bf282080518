// The matmul epilogue pass (matmul_epilogue.h): one thread per element, grid-stride.
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/device_math.cuh"
#include "tensor/cuda/device_types.cuh"
#include "tensor/cuda/matmul_epilogue.h"

namespace sp::cuda {
namespace {

// product, aux, out: [rows, n]; bias: [n] -> out (and aux for gelu_tanh).
template <typename T, typename B>
__global__ void epilogue_kernel(const acc_t<T>* product, T* out, const B* bias, T* aux,
                                int64_t total, int64_t n, Epilogue epilogue, bool accumulate) {
  using C = acc_t<T>;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step) {
    C pre = product != nullptr ? product[i] : C(0);
    if (bias != nullptr) pre += load_as<C>(bias[i % n]);
    if (accumulate) pre += load_as<C>(out[i]);
    if (epilogue == Epilogue::gelu_tanh) {
      aux[i] = store_as<T>(pre);
      out[i] = store_as<T>(dm::gelu_tanh(pre));
    } else if (epilogue == Epilogue::dgelu_tanh) {
      out[i] = store_as<T>(pre * dm::gelu_tanh_grad(load_as<C>(aux[i])));
    } else {
      out[i] = store_as<T>(pre);
    }
  }
}

template <typename T, typename B>
void launch(const MatmulEpilogueArgs& args) {
  constexpr int kThreads = 256;
  const int64_t total = args.rows * args.n;
  epilogue_kernel<T, B><<<grid_for(total, kThreads), kThreads, 0, current_stream()>>>(
      static_cast<const acc_t<T>*>(args.product), static_cast<T*>(args.out),
      static_cast<const B*>(args.bias), static_cast<T*>(args.aux), total, args.n, args.epilogue,
      args.accumulate);
  SP_CUDA_CHECK_LAUNCH("matmul");
}

}  // namespace

void launch_matmul_epilogue(const MatmulEpilogueArgs& args) {
  if (args.rows * args.n == 0) return;
  SP_CUDA_DISPATCH_FLOAT(args.out_dtype, "matmul", [&]<typename T>() {
    if (args.bias != nullptr && args.bias_dtype != args.out_dtype) {
      SP_CHECK(args.bias_dtype == DType::f32, "[matmul] bias dtype ", dtype_name(args.bias_dtype),
               " for a ", dtype_name(args.out_dtype), " output");
      launch<T, float>(args);
    } else {
      launch<T, T>(args);
    }
  });
}

}  // namespace sp::cuda
