#pragma once
// What the device-independent engine needs from CUDA. Defined by tensor/cuda/ when built
// with SP_WITH_CUDA, else by tensor/no_cuda/, whose definitions throw
// "[<op>] built without CUDA: ...". The Backend side (cuda_backend(), built_with_cuda(),
// cuda_available()) is declared in tensor/backend.h.
#include <string>

#include "tensor/allocator.h"

namespace sp {

// The allocator of CUDA device device_index (what allocator_for(Device::cuda(i)) returns).
// Throws sp::Error when built without CUDA, when no device is usable, or when the index
// is out of range.
Allocator& cuda_allocator(int device_index);

// The number of usable CUDA devices: 0 without CUDA, without a driver or without a GPU.
// Never throws.
int cuda_device_count();

// Why CUDA cannot be used, for error messages ("built without CUDA: rebuild with ...",
// "no CUDA device: ..."); empty when cuda_available().
std::string cuda_unavailable_reason();

}  // namespace sp
