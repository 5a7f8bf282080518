#pragma once
// CUDA emulated on the host, for machines without a GPU: with SP_EMULATE_CUDA=1 in the
// environment, the process sees one CUDA device, cuda:0, whose tensors live in host memory
// (handed out by the same caching allocator as on a GPU) and whose primitives run on the
// CPU backend. Whatever the build, whatever the machine has.
//
// It runs the `gpu` suite's device flow in every test run (CTest registers it a second time
// as emulated.*): inputs moved to and made on the device, every op's device checks, values
// read back only through copies (a host read of cuda:0 memory outside a primitive throws,
// as it would fault on a GPU), the caching allocator under a real workload, T5, PEFT, the
// optimizers and the runner with model.device: cuda. The numbers are the CPU's, so it says
// nothing about the CUDA kernels themselves: that takes scripts/gpu-check.sh on a GPU.
#include "tensor/allocator.h"

namespace sp {

class Backend;

// Whether SP_EMULATE_CUDA=1 (read once, at the first call).
bool cuda_emulated();

// The emulated device's backend and allocator (what cuda_backend() and cuda_allocator(0)
// return while cuda_emulated()).
Backend& emulated_cuda_backend();
Allocator& emulated_cuda_allocator(int device_index);

// Whether an emulated primitive is running: only then may host code touch cuda:0 memory
// (Tensor::data, Tensor::data_ptr).
bool emulated_kernel_running();

}  // namespace sp
