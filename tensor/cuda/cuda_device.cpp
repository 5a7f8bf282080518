// Device discovery: whether CUDA can be used, asked once per process and never throwing,
// so CPU-only machines (CI has nvcc but no GPU) run everything else normally.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "tensor/backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda_emulation.h"
#include "tensor/cuda_hooks.h"

namespace sp {
namespace {

struct DeviceQuery {
  int count = 0;
  std::string reason;  // why count is 0
};

const DeviceQuery& device_query() {
  static const DeviceQuery query = [] {
    DeviceQuery q;
    const cudaError_t err = cudaGetDeviceCount(&q.count);
    if (err != cudaSuccess) {
      cudaGetLastError();
      q.count = 0;
      q.reason = str_cat("no CUDA device: cudaGetDeviceCount failed with ", cudaGetErrorName(err),
                         ": ", cudaGetErrorString(err));
    } else if (q.count == 0) {
      q.reason = "no CUDA device: cudaGetDeviceCount found none";
    }
    return q;
  }();
  return query;
}

}  // namespace

bool built_with_cuda() { return true; }
// SP_EMULATE_CUDA=1 stands in one host-emulated device for the real ones.
int cuda_device_count() { return cuda_emulated() ? 1 : device_query().count; }
bool cuda_available() { return cuda_device_count() > 0; }
std::string cuda_unavailable_reason() { return cuda_emulated() ? "" : device_query().reason; }

namespace cuda {

bool context_is_lost(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorMisalignedAddress:
    case cudaErrorIllegalInstruction:
    case cudaErrorHardwareStackError:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout: return true;
    default: return false;
  }
}

void fail_cuda(const char* op, const char* expr, cudaError_t err) {
  const std::string what = str_cat("[", op, "] CUDA error ", cudaGetErrorName(err), ": ",
                                   cudaGetErrorString(err), " (in ", expr, ")");
  if (context_is_lost(err)) {
    // Throwing would let the program go on with a dead context, every later call failing
    // and blaming itself; checkpoints and results files are written atomically, so a run
    // stopped here resumes from its last checkpoint.
    std::fprintf(stderr, "%s\nThe CUDA context cannot be used after this error: stopping.\n",
                 what.c_str());
    std::abort();
  }
  cudaGetLastError();  // clears the error so later calls are not blamed for it
  fail(what);
}

DeviceGuard::DeviceGuard(int device) {
  SP_CUDA_CHECK("set_device", cudaGetDevice(&previous_));
  if (previous_ != device) {
    SP_CUDA_CHECK("set_device", cudaSetDevice(device));
    switched_ = true;
  }
}

DeviceGuard::~DeviceGuard() {
  if (switched_) cudaSetDevice(previous_);
}

cudaStream_t stream(int device) {
  // Never destroyed (allocated, not static objects): outlive static tensors and exit hooks.
  static std::mutex& mu = *new std::mutex;
  static std::vector<cudaStream_t>& streams = *new std::vector<cudaStream_t>;
  std::lock_guard<std::mutex> lock(mu);
  if (streams.empty()) streams.assign(static_cast<size_t>(std::max(cuda_device_count(), 0)), nullptr);
  SP_CHECK(device >= 0 && device < static_cast<int>(streams.size()), "[stream] cuda:", device,
           " does not exist: ", streams.size(), " CUDA device(s) visible");
  if (streams[device] == nullptr) {
    DeviceGuard guard(device);
    SP_CUDA_CHECK("stream", cudaStreamCreateWithFlags(&streams[device], cudaStreamDefault));
  }
  return streams[device];
}

cudaStream_t current_stream() {
  int device = 0;
  SP_CUDA_CHECK("stream", cudaGetDevice(&device));
  return stream(device);
}

void synchronize(int device, const char* op) {
  SP_CUDA_CHECK(op, cudaStreamSynchronize(stream(device)));
}

int sm_count(int device) {
  static std::mutex& mu = *new std::mutex;                  // never destroyed, as stream()'s
  static std::vector<int>& counts = *new std::vector<int>;  // 0 until asked
  std::lock_guard<std::mutex> lock(mu);
  if (counts.empty()) counts.assign(static_cast<size_t>(std::max(cuda_device_count(), 0)), 0);
  SP_CHECK(device >= 0 && device < static_cast<int>(counts.size()), "[sm_count] cuda:", device,
           " does not exist: ", counts.size(), " CUDA device(s) visible");
  if (counts[device] == 0) {
    SP_CUDA_CHECK("sm_count", cudaDeviceGetAttribute(&counts[device],
                                                     cudaDevAttrMultiProcessorCount, device));
  }
  return counts[device];
}

unsigned grid_for(int64_t n, int threads) {
  static const int max_blocks = [] {
    // A broken CUDA setup fails at the launch itself, naming its op; size for an H100 here.
    try {
      int device = 0;
      SP_CUDA_CHECK("grid_for", cudaGetDevice(&device));
      return sm_count(device) * 32;
    } catch (const Error&) {
      return 132 * 32;
    }
  }();
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(blocks, max_blocks)));
}

}  // namespace cuda
}  // namespace sp
