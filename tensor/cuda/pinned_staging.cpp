// The pinned staging pool of host <-> device copies (pinned_staging.h).
#include "tensor/cuda/pinned_staging.h"

#include <algorithm>

#include "tensor/cuda/cuda_util.h"

namespace sp::cuda {
namespace {

size_t block_size_for(size_t nbytes) {
  size_t s = PinnedStaging::kMinBlockBytes;
  while (s < nbytes) s *= 2;
  return std::min(s, std::max(nbytes, PinnedStaging::kChunkBytes));
}

}  // namespace

PinnedStaging& PinnedStaging::instance() {
  static PinnedStaging* pool = new PinnedStaging();
  return *pool;
}

bool PinnedStaging::idle(Block* b) {
  if (!b->recorded) return true;
  const cudaError_t err = cudaEventQuery(b->event);
  if (err == cudaErrorNotReady) return false;
  SP_CUDA_CHECK("copy", err);
  b->recorded = false;
  return true;
}

PinnedStaging::Block* PinnedStaging::acquire(size_t nbytes) { return acquire(nbytes, true); }

PinnedStaging::Block* PinnedStaging::try_acquire(size_t nbytes) { return acquire(nbytes, false); }

PinnedStaging::Block* PinnedStaging::acquire(size_t nbytes, bool wait_for_holders) {
  SP_CHECK(nbytes <= kChunkBytes, "[copy] staging request of ", nbytes, " bytes exceeds the ",
           kChunkBytes, "-byte chunk");
  std::unique_lock<std::mutex> lock(mu_);
  const size_t want = block_size_for(nbytes);
  for (;;) {
    // The smallest idle block that fits.
    Block* best = nullptr;
    for (auto& b : blocks_) {
      if (b->held || b->bytes < nbytes || !idle(b.get())) continue;
      if (best == nullptr || b->bytes < best->bytes) best = b.get();
    }
    if (best != nullptr) {
      best->held = true;
      return best;
    }
    // Make room by dropping idle blocks too small for this request.
    if (pool_bytes_ + want > kMaxPoolBytes) {
      for (auto it = blocks_.begin(); it != blocks_.end() && pool_bytes_ + want > kMaxPoolBytes;) {
        Block* b = it->get();
        if (!b->held && idle(b)) {
          SP_CUDA_CHECK("copy", cudaFreeHost(b->ptr));
          if (b->event != nullptr) cudaEventDestroy(b->event);
          pool_bytes_ -= b->bytes;
          it = blocks_.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (pool_bytes_ + want <= kMaxPoolBytes || blocks_.empty()) {
      auto b = std::make_unique<Block>();
      SP_CUDA_CHECK("copy", cudaHostAlloc(&b->ptr, want, cudaHostAllocPortable));
      b->bytes = want;
      b->held = true;
      pool_bytes_ += want;
      blocks_.push_back(std::move(b));
      return blocks_.back().get();
    }
    // The pool is full of blocks in flight: wait for the one released first.
    Block* oldest = nullptr;
    for (auto& b : blocks_) {
      if (b->held || !b->recorded) continue;
      if (oldest == nullptr || b->last_use < oldest->last_use) oldest = b.get();
    }
    if (oldest == nullptr) {
      // Other threads hold every block: wait for a release, unless the caller holds one
      // itself (all of them might, each waiting for another's).
      if (!wait_for_holders) return nullptr;
      released_.wait(lock);
      continue;
    }
    // With the lock held: another thread could otherwise free this block (and its event)
    // the moment its copy finishes.
    SP_CUDA_CHECK("copy", cudaEventSynchronize(oldest->event));
  }
}

void PinnedStaging::record(Block* b, cudaStream_t stream, int device) {
  std::lock_guard<std::mutex> lock(mu_);
  try {
    if (b->event != nullptr && b->event_device != device) {
      // An event is recorded only on streams of the device it was created on.
      cudaEventDestroy(b->event);
      b->event = nullptr;
    }
    if (b->event == nullptr) {
      DeviceGuard guard(device);
      SP_CUDA_CHECK("copy", cudaEventCreateWithFlags(&b->event, cudaEventDisableTiming));
      b->event_device = device;
    }
    SP_CUDA_CHECK("copy", cudaEventRecord(b->event, stream));
  } catch (...) {
    // The copy is already queued: wait for it here, or the block, released as the error
    // unwinds, could be handed out while the transfer still reads or writes it.
    cudaStreamSynchronize(stream);
    throw;
  }
  b->recorded = true;
}

void PinnedStaging::wait(Block* b) {
  cudaEvent_t event = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!b->recorded) return;
    event = b->event;
  }
  SP_CUDA_CHECK("copy", cudaEventSynchronize(event));
  std::lock_guard<std::mutex> lock(mu_);
  b->recorded = false;
}

void PinnedStaging::release(Block* b) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    b->held = false;
    b->last_use = ++uses_;
  }
  released_.notify_all();
}

size_t PinnedStaging::pool_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pool_bytes_;
}

}  // namespace sp::cuda
