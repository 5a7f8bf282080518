// fill and copy on CUDA: every direction (host <-> device, on a device, across devices),
// any dtype pair and strides on either side. Everything is queued on cuda::stream(device):
// host -> device returns once the data sits in pinned staging (pinned_staging.h), before
// the GPU has it; device -> host returns with the data in place.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>
#include <type_traits>
#include <utility>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_kernels.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/pinned_staging.h"

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

// host src [nbytes] (pageable) -> device dst, chunk by chunk through pinned staging. Returns
// when the last chunk is queued: src may be overwritten at once, the GPU reads the staging.
void upload(void* dst, const void* src, size_t nbytes, int device) {
  cudaStream_t s = stream(device);
  const char* from = static_cast<const char*>(src);
  char* to = static_cast<char*>(dst);
  for (size_t done = 0; done < nbytes;) {
    const size_t n = std::min(PinnedStaging::kChunkBytes, nbytes - done);
    StagingBlock block(n);
    std::memcpy(block.data(), from + done, n);
    SP_CUDA_CHECK("copy", cudaMemcpyAsync(to + done, block.data(), n, cudaMemcpyHostToDevice, s));
    block.record(s, device);
    done += n;
  }
}

// device src [nbytes] -> host dst (pageable), after the work queued before it. Two chunks
// in flight: the DMA of one overlaps the host memcpy of the previous.
void download(void* dst, const void* src, size_t nbytes, int device) {
  cudaStream_t s = stream(device);
  const char* from = static_cast<const char*>(src);
  char* to = static_cast<char*>(dst);
  struct InFlight {
    StagingBlock block;
    size_t offset, bytes;
  };
  std::deque<InFlight> queue;  // at most two
  auto drain_front = [&] {
    InFlight& f = queue.front();
    f.block.wait();
    std::memcpy(to + f.offset, f.block.data(), f.bytes);
    queue.pop_front();
  };
  for (size_t done = 0; done < nbytes;) {
    const size_t n = std::min(PinnedStaging::kChunkBytes, nbytes - done);
    std::optional<StagingBlock> block = StagingBlock::try_acquire(n);
    if (!block) {
      // Other threads hold the pool: finish and release ours before waiting for theirs.
      while (!queue.empty()) drain_front();
      block.emplace(n);
    }
    InFlight f{std::move(*block), done, n};
    SP_CUDA_CHECK("copy",
                  cudaMemcpyAsync(f.block.data(), from + done, n, cudaMemcpyDeviceToHost, s));
    f.block.record(s, device);
    queue.push_back(std::move(f));
    if (queue.size() == 2) drain_front();
    done += n;
  }
  while (!queue.empty()) drain_front();
}

// t (on its device, the current one) as a contiguous tensor of its dtype.
Tensor contiguous_here(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor c = Tensor::empty(t.shape(), t.dtype(), t.device());
  launch_copy(c, t);
  return c;
}

// dst [nbytes] on dst_dev <- src on src_dev, both contiguous. Ordered after the work queued
// on both devices' streams, and before any later work on either (so src's memory is not
// reused under the copy).
void peer_copy(void* dst, int dst_dev, const void* src, int src_dev, size_t nbytes,
               bool wait_for_it) {
  cudaStream_t ss = stream(src_dev), ds = stream(dst_dev);
  cudaEvent_t src_ready = nullptr, copied = nullptr;
  {
    DeviceGuard guard(src_dev);
    SP_CUDA_CHECK("copy", cudaEventCreateWithFlags(&src_ready, cudaEventDisableTiming));
    SP_CUDA_CHECK("copy", cudaEventRecord(src_ready, ss));
  }
  {
    DeviceGuard guard(dst_dev);
    SP_CUDA_CHECK("copy", cudaStreamWaitEvent(ds, src_ready, 0));
    SP_CUDA_CHECK("copy", cudaMemcpyPeerAsync(dst, dst_dev, src, src_dev, nbytes, ds));
    SP_CUDA_CHECK("copy", cudaEventCreateWithFlags(&copied, cudaEventDisableTiming));
    SP_CUDA_CHECK("copy", cudaEventRecord(copied, ds));
  }
  {
    DeviceGuard guard(src_dev);
    SP_CUDA_CHECK("copy", cudaStreamWaitEvent(ss, copied, 0));
  }
  if (wait_for_it) SP_CUDA_CHECK("copy", cudaEventSynchronize(copied));
  // Destroying a recorded event is legal: its resources go once it completes.
  cudaEventDestroy(src_ready);
  cudaEventDestroy(copied);
}

}  // namespace

// out: [*] any layout on a CUDA device -> every element = value (converted to out's dtype).
void CudaBackend::fill(Tensor& out, double value) {
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device().index);
  const uint64_t pattern = element_pattern(out.dtype(), value);
  if (out.is_contiguous()) {
    SP_CUDA_CHECK("fill", launch_fill(address(out), out.numel(),
                                      static_cast<int>(out.element_size()), pattern));
  } else {
    launch_fill_strided(out, pattern);
  }
}

// in: [*] -> out: [*] (same shape), any dtypes and layouts, at least one side on a CUDA
// device.
void CudaBackend::copy(Tensor& out, const Tensor& in) {
  SP_CHECK(out.shape() == in.shape(), "[copy] shapes differ: out is ", describe(out), ", in is ",
           describe(in));
  if (out.numel() == 0) return;

  if (in.device().is_cpu()) {
    // Host -> device: gather and convert on the CPU (cheap next to the transfer), then one
    // contiguous upload.
    Tensor src = in;
    if (!in.is_contiguous() || in.dtype() != out.dtype()) {
      src = Tensor::empty(in.shape(), out.dtype(), Device::cpu());
      cpu_backend().copy(src, in);
    }
    const int dev = out.device().index;
    DeviceGuard guard(dev);
    if (out.is_contiguous()) {
      upload(address(out), address(src), static_cast<size_t>(out.nbytes()), dev);
    } else {
      Tensor staged = Tensor::empty(out.shape(), out.dtype(), out.device());
      upload(address(staged), address(src), static_cast<size_t>(staged.nbytes()), dev);
      launch_copy(out, staged);
    }
    return;
  }

  if (out.device().is_cpu()) {
    // Device -> host: gather on the device in in's dtype (the fewest bytes to move), then
    // convert / scatter on the CPU if needed.
    const int dev = in.device().index;
    DeviceGuard guard(dev);
    const Tensor src = contiguous_here(in);
    if (out.is_contiguous() && out.dtype() == in.dtype()) {
      download(address(out), address(src), static_cast<size_t>(out.nbytes()), dev);
    } else {
      Tensor host = Tensor::empty(in.shape(), in.dtype(), Device::cpu());
      download(address(host), address(src), static_cast<size_t>(host.nbytes()), dev);
      cpu_backend().copy(out, host);
    }
    return;
  }

  if (in.device() == out.device()) {
    DeviceGuard guard(out.device().index);
    if (in.dtype() == out.dtype() && in.is_contiguous() && out.is_contiguous()) {
      SP_CUDA_CHECK("copy", cudaMemcpyAsync(address(out), address(in),
                                            static_cast<size_t>(out.nbytes()),
                                            cudaMemcpyDeviceToDevice, current_stream()));
    } else {
      launch_copy(out, in);
    }
    return;
  }

  // Across devices: a contiguous peer copy in out's dtype, converting / gathering on the
  // source device first and scattering on the destination device after, where needed.
  const int sd = in.device().index, dd = out.device().index;
  Tensor src = in;
  if (!in.is_contiguous() || in.dtype() != out.dtype()) {
    DeviceGuard guard(sd);
    src = Tensor::empty(in.shape(), out.dtype(), in.device());
    launch_copy(src, in);
  }
  Tensor dst = out.is_contiguous() ? out : Tensor::empty(out.shape(), out.dtype(), out.device());
  // Temporaries are freed on return: wait for the copy that reads or writes them.
  const bool temporaries = !src.is_same(in) || !dst.is_same(out);
  peer_copy(address(dst), dd, address(src), sd, static_cast<size_t>(dst.nbytes()), temporaries);
  if (!dst.is_same(out)) {
    DeviceGuard guard(dd);
    launch_copy(out, dst);
  }
}

}  // namespace cuda
}  // namespace sp
